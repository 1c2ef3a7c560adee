/* 政策问答 chat — fills #pna-chat-root (rendered by the Gradio page) with a chat that talks to /ui/ask/stream.
 *
 * The conversation lives in localStorage ("pna-chat:<channel>"): a reload or a server restart keeps it, and a
 * question asked while the server is unreachable is kept and sent when it answers again. Everything shown is
 * built with textContent; no server or user text is ever parsed as HTML. */
(function () {
  "use strict";
  if (window.__pnaChat) return;
  var script = document.currentScript;
  var BASE = new URL("../../", script ? script.src : location.href); // the app's root, whatever page we are on
  var MAX_CHARS = 2000;
  var HISTORY_TURNS = 10; // exchanges sent for resolving follow-ups
  var KEEP_TURNS = 100; // exchanges kept in the browser
  var TEXT = {
    offline: "暂时连不上服务器。您的问题已保留，连接恢复后会自动发送。",
    back: "已重新连接。",
    waiting: "等待连接，恢复后自动发送…",
    failed: "抱歉，处理这个问题时出错了，请稍后再试。",
    tooLong: "问题太长了（最多" + MAX_CHARS + "字），请精简后再发送。",
    fallback: "生成模型暂不可用，以下为依据通知原文整理的回答。",
    copied: "已复制",
    copyFailed: "复制失败，请手动选择文字复制",
    thanksUp: "感谢点赞！可以补充说明（可选）：",
    thanksDown: "感谢反馈，我们会改进。可以补充说明（可选）：",
    commentSaved: "已收到您的补充说明，谢谢！",
    feedbackFailed: "反馈保存失败，请稍后再试。"
  };

  // ---- state, kept in the browser ----------------------------------------------------------------------
  function Chat(root) {
    this.root = root;
    this.channel = root.getAttribute("data-channel") || "chat";
    this.key = "pna-chat:" + this.channel;
    this.examples = JSON.parse(root.getAttribute("data-examples") || "[]");
    this.doc = root.getAttribute("data-doc") || "";
    this.title = root.getAttribute("data-title") || "";
    this.state = this.load();
    this.busy = false;
    this.offline = false;
  }

  Chat.prototype.load = function () {
    try {
      var s = JSON.parse(localStorage.getItem(this.key) || "null");
      if (s && s.v === 1 && Array.isArray(s.turns)) {
        // Keep only turns this version can show: a question, and a complete answer or none yet.
        s.turns = s.turns.filter(function (t) {
          return t && typeof t.question === "string" && (!t.data || (t.data.answer && typeof t.data.answer.answer === "string"
            && Array.isArray(t.data.cards) && typeof t.data.plain === "string"));
        });
        s.draft = typeof s.draft === "string" ? s.draft : "";
        return s;
      }
    } catch (e) { /* unreadable: start afresh */ }
    return { v: 1, turns: [], draft: "" };
  };

  Chat.prototype.save = function () {
    try {
      this.state.turns = this.state.turns.slice(-KEEP_TURNS);
      localStorage.setItem(this.key, JSON.stringify(this.state));
    } catch (e) { /* storage full or disabled: the chat still works for this page */ }
  };

  Chat.prototype.history = function (upTo) {
    var out = [];
    var done = this.state.turns.slice(0, upTo).filter(function (t) { return t.data; }).slice(-HISTORY_TURNS);
    done.forEach(function (t) {
      out.push({ role: "user", content: t.question });
      out.push({ role: "assistant", content: t.data.answer.answer });
    });
    return out;
  };

  // ---- DOM helpers ---------------------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }

  // The answer text: paragraphs, "- " / "1. " lists, **bold**, and source markers: [n] opens card n; a marker
  // naming a source, such as [第二条] or [附件第1项] in a generated answer, opens that source's card.
  var INLINE = /\*\*([^*\n]+)\*\*|\[([^\[\]\n]{1,12})\]/g;
  function markerOf(label, turnIndex, chat) {
    if (/^\d{1,2}$/.test(label)) return label;
    var turn = chat.state.turns[turnIndex], cards = turn && turn.data ? turn.data.cards : [];
    var card = (cards || []).filter(function (c) { return c.label === label; })[0];
    return card ? String(card.marker) : null;
  }
  function inline(text, turnIndex, chat) {
    var frag = document.createDocumentFragment();
    var last = 0, m;
    INLINE.lastIndex = 0;
    while ((m = INLINE.exec(text))) {
      var n = m[1] === undefined ? markerOf(m[2], turnIndex, chat) : null;
      if (m[1] === undefined && n === null) continue; // brackets that name no source stay text
      if (m.index > last) frag.appendChild(document.createTextNode(text.slice(last, m.index)));
      if (m[1] !== undefined) frag.appendChild(el("strong", { text: m[1] }));
      else frag.appendChild(el("a", {
        class: "pna-ref", href: "#", text: "[" + n + "]", title: m[2] === n ? null : m[2], "aria-label": "出处" + n,
        onclick: function (k) { return function (e) { e.preventDefault(); chat.openSource(turnIndex, k); }; }(n)
      }));
      last = INLINE.lastIndex;
    }
    if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
    return frag;
  }

  function richText(text, turnIndex, chat) {
    var box = el("div", { class: "pna-a-text" });
    var list = null;
    (text || "").split("\n").forEach(function (line) {
      var bullet = /^\s*(?:[-*•・]\s+)(.*)$/.exec(line), numbered = /^\s*(\d+)[.)、]\s+(.*)$/.exec(line);
      if (bullet || numbered) {
        var tag = bullet ? "ul" : "ol";
        if (!list || list.tagName.toLowerCase() !== tag) { list = el(tag); box.appendChild(list); }
        var li = el("li");
        li.appendChild(inline(bullet ? bullet[1] : numbered[2], turnIndex, chat));
        list.appendChild(li);
        return;
      }
      list = null;
      if (!line.trim()) return;
      var p = el("p");
      if (!box.firstChild) {
        // The direct answer is the first sentence: set it apart so that it is read first.
        var end = line.search(/[。！？!?]/);
        if (end >= 0 && end < line.length - 1) {
          var lead = el("span", { class: "pna-lead" });
          lead.appendChild(inline(line.slice(0, end + 1), turnIndex, chat));
          p.appendChild(lead);
          line = line.slice(end + 1);
        } else {
          p.className = "pna-lead";
        }
      }
      p.appendChild(inline(line, turnIndex, chat));
      box.appendChild(p);
    });
    return box;
  }

  function field(name, value) {
    return [el("dt", { text: name }), el("dd", { text: value })];
  }

  function sourceCard(card, turnIndex, open) {
    var summaryText = card.source === "annex" && card.qualification ? card.label + " · " + card.qualification : card.label;
    var summary = el("summary", {}, [el("span", { class: "pna-num", text: "[" + card.marker + "]" }), " " + summaryText]);
    var body = el("div", { class: "pna-card-body" });
    if (card.source === "annex" && card.rows && card.rows.length) {
      var dl = el("dl");
      field("序号", String(card.item)).forEach(function (n) { dl.appendChild(n); });
      field("类别（职业资格名称）", card.qualification || "").forEach(function (n) { dl.appendChild(n); });
      card.rows.forEach(function (row) {
        field("职业", row.occupations.join("、")).concat(field("实施部门", row.departments))
          .concat(field("批次与时间", row.when)).forEach(function (n) { dl.appendChild(n); });
      });
      body.appendChild(dl);
    } else {
      body.appendChild(el("blockquote", { text: card.quote || "（无引文）" }));
      if (card.clause_text) {
        body.appendChild(el("details", { class: "pna-clause" }, [
          el("summary", { text: "阅读" + card.label + "全文" }), el("p", { text: card.clause_text })]));
      }
    }
    return el("details", { class: "pna-card", id: "pna-src-" + turnIndex + "-" + card.marker, open: open ? "" : null },
              [summary, body]);
  }

  // ---- rendering -----------------------------------------------------------------------------------------
  Chat.prototype.mount = function () {
    var self = this;
    this.root.textContent = "";
    this.root.setAttribute("data-mounted", "1");
    this.status = el("div", { class: "pna-status", role: "status", hidden: "" });
    this.log = el("div", { class: "pna-log", role: "log", "aria-live": "polite", tabindex: "-1" });
    this.box = el("textarea", { id: "pna-question", rows: "1", maxlength: String(MAX_CHARS), "aria-label": "输入问题",
                                placeholder: this.channel === "widget" || window.innerWidth < 520 ? "请输入您的问题"
                                  : "请输入问题，例如：电工证什么时候退出目录？" });
    this.box.value = this.state.draft || "";
    this.box.addEventListener("input", function () { self.state.draft = self.box.value; self.save(); self.fit(); });
    this.box.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); self.send(); }
    });
    this.sendButton = el("button", { type: "button", id: "pna-send", class: "pna-primary", text: "发送",
                                     onclick: function () { self.send(); } });
    // Common questions: in a row on a wide screen; on a phone behind one 常见问题 button, as a list above the input.
    var chips = el("div", { class: "pna-chips", role: "group", "aria-label": "常见问题" });
    var menu = el("div", { class: "pna-menu", id: "pna-examples-menu", role: "group", "aria-label": "常见问题", hidden: "" });
    var toggle = el("button", { type: "button", id: "pna-examples", class: "pna-tool pna-examples-toggle", text: "常见问题 ▴",
                                "aria-expanded": "false", "aria-controls": "pna-examples-menu" });
    function showMenu(open) {
      menu.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? "常见问题 ▾" : "常见问题 ▴";
    }
    toggle.addEventListener("click", function () { showMenu(menu.hidden); });
    this.examples.forEach(function (q) {
      chips.appendChild(el("button", { type: "button", class: "pna-chip", text: q, onclick: function () { self.ask(q); } }));
      menu.appendChild(el("button", { type: "button", class: "pna-chip", text: q,
                                      onclick: function () { showMenu(false); self.ask(q); } }));
    });
    var tools = el("div", { class: "pna-tools" }, [
      el("button", { type: "button", id: "pna-new", class: "pna-tool", text: "新对话", onclick: function () { self.reset(); } }),
      el("button", { type: "button", id: "pna-export", class: "pna-tool", text: "导出对话", title: "把整个对话导出为纯文本文件",
                     onclick: function () { self.exportText(); } }),
      toggle, chips
    ]);
    var form = el("div", { class: "pna-form" }, [this.box, this.sendButton]);
    this.root.appendChild(this.status);
    this.root.appendChild(this.log);
    this.root.appendChild(el("div", { class: "pna-dock" }, [menu, tools, form]));
    this.renderAll();
    this.size();
    if (this.state.turns.length) this.showStart(this.state.turns.length - 1);
    var pending = this.state.turns.filter(function (t) { return !t.data && !t.error; });
    if (pending.length) this.resend();
  };

  // The chat fills the window below its own top edge, so the input stays at the bottom without scrolling the page.
  Chat.prototype.size = function () {
    if (this.channel === "widget") return; // the widget page is the whole frame (CSS)
    var rect = this.root.getBoundingClientRect();
    if (!rect.width) return; // on a hidden tab
    var top = rect.top + window.scrollY;
    var h = Math.max(300, window.innerHeight - top - 6);
    this.root.style.height = h + "px";
  };

  Chat.prototype.fit = function () {
    this.box.style.height = "auto";
    this.box.style.height = Math.min(this.box.scrollHeight, 120) + "px";
  };

  Chat.prototype.renderAll = function () {
    var self = this;
    this.log.textContent = "";
    if (!this.state.turns.length) {
      var intro = el("div", { class: "pna-empty" }, [
        el("p", { class: "pna-hello", text: "您好！请问关于职业资格退出目录的问题，回答会附原文出处。" }),
        el("p", { class: "pna-hint", text: "常见问题（点击即问）：" })]);
      var list = el("div", { class: "pna-empty-examples" });
      this.examples.forEach(function (q) {
        list.appendChild(el("button", { type: "button", class: "pna-chip", text: q, onclick: function () { self.ask(q); } }));
      });
      intro.appendChild(list);
      this.log.appendChild(intro);
    }
    this.state.turns.forEach(function (t, i) { self.log.appendChild(self.renderTurn(t, i)); });
  };

  Chat.prototype.renderTurn = function (turn, i) {
    var self = this;
    var node = el("article", { class: "pna-turn", "data-turn": String(i) });
    node.appendChild(el("div", { class: "pna-q", "data-testid": "user" }, [el("div", { class: "pna-bubble", text: turn.question })]));
    var a = el("div", { class: "pna-a", "data-testid": "bot" });
    node.appendChild(a);
    if (turn.error) {
      a.appendChild(el("p", { class: "pna-error", text: turn.error }));
    } else if (!turn.data) {
      a.appendChild(turn.streamed ? richText(turn.streamed, i, this)
                    : el("p", { class: "pna-typing", text: this.offline ? TEXT.waiting : "正在回答…" }));
    } else {
      var d = turn.data, ans = d.answer;
      if (turn.notice) a.appendChild(el("p", { class: "pna-notice", text: TEXT.fallback }));
      a.appendChild(richText(ans.answer, i, this));
      if (d.annex_link) {
        var href = new URL(d.annex_link, BASE).href;
        a.appendChild(el("p", { class: "pna-annex-link" }, [el("a", { href: href, target: this.channel === "widget" ? "_blank" : null,
          rel: "noopener", text: "在附件目录中查看完整列表 →" })]));
      }
      if (d.cards && d.cards.length) {
        var sources = el("section", { class: "pna-sources", "aria-label": "出处" },
                         [el("h3", { text: "出处（" + d.cards.length + "）" })]);
        d.cards.forEach(function (card, k) { sources.appendChild(sourceCard(card, i, k === 0)); });
        a.appendChild(sources);
      }
      if (ans.follow_ups && ans.follow_ups.length) {
        var fu = el("div", { class: "pna-followups", role: "group", "aria-label": "您可能还想问" },
                    [el("span", { class: "pna-hint", text: "您可能还想问：" })]);
        ans.follow_ups.forEach(function (q) {
          fu.appendChild(el("button", { type: "button", class: "pna-chip pna-followup", text: q, onclick: function () { self.ask(q); } }));
        });
        a.appendChild(fu);
      }
      a.appendChild(this.actions(turn, i));
    }
    return node;
  };

  Chat.prototype.actions = function (turn, i) {
    var self = this;
    var fb = turn.feedback || {};
    var copy = el("button", { type: "button", class: "pna-act pna-copy", text: "复制", title: "复制回答和出处（纯文本）" });
    copy.addEventListener("click", function () {
      copyText(turn.data.plain).then(function () { flash(copy, TEXT.copied); }, function () { flash(copy, TEXT.copyFailed); });
    });
    var up = el("button", { type: "button", class: "pna-act pna-up", "aria-label": "有用", "aria-pressed": String(fb.rating === "up"),
                            text: "有用", onclick: function () { self.rate(i, "up"); } });
    var down = el("button", { type: "button", class: "pna-act pna-down", "aria-label": "没用", "aria-pressed": String(fb.rating === "down"),
                              text: "没用", onclick: function () { self.rate(i, "down"); } });
    var row = el("div", { class: "pna-actions" }, [copy, up, down]);
    var wrap = el("div", {}, [row]);
    if (fb.open) {
      var note = el("textarea", { class: "pna-comment-text", rows: "2", maxlength: "2000", "aria-label": "补充说明",
                                  placeholder: "例如：哪里不对、希望补充什么（可选）" });
      var sendNote = el("button", { type: "button", class: "pna-act", text: "提交说明", onclick: function () { self.comment(i, note.value); } });
      wrap.appendChild(el("div", { class: "pna-comment" }, [
        el("p", { text: fb.rating === "up" ? TEXT.thanksUp : TEXT.thanksDown }), note, sendNote]));
    }
    if (fb.status) wrap.appendChild(el("p", { class: "pna-feedback-status", role: "status", text: fb.status }));
    return wrap;
  };

  Chat.prototype.replaceTurn = function (i) {
    var old = this.log.querySelector('[data-turn="' + i + '"]');
    var fresh = this.renderTurn(this.state.turns[i], i);
    var top = this.log.scrollTop;
    if (old) { fresh.style.minHeight = old.style.minHeight; this.log.replaceChild(fresh, old); }
    else this.log.appendChild(fresh);
    this.log.scrollTop = top; // a re-rendered turn does not move the reader
    return fresh;
  };

  // Show a turn from its start: the question at the top of the chat, the answer right under it.
  Chat.prototype.showStart = function (i) {
    var node = this.log.querySelector('[data-turn="' + i + '"]');
    if (!node) return;
    // The newest turn is at least as tall as the chat, so that its start can always come to the top.
    Array.prototype.forEach.call(this.log.querySelectorAll(".pna-turn"), function (t) { t.style.minHeight = ""; });
    if (i === this.state.turns.length - 1) node.style.minHeight = Math.max(0, this.log.clientHeight - 24) + "px";
    this.log.scrollTop = this.offset(node) - 4;
  };

  // Where `node` starts in the chat's scrolled content.
  Chat.prototype.offset = function (node) {
    return node.getBoundingClientRect().top - this.log.getBoundingClientRect().top + this.log.scrollTop;
  };

  // Scroll the chat (never the page) just enough to show `node` whole.
  Chat.prototype.reveal = function (node) {
    var top = this.offset(node), bottom = top + node.offsetHeight;
    if (bottom > this.log.scrollTop + this.log.clientHeight) this.log.scrollTop = bottom - this.log.clientHeight + 8;
    if (top < this.log.scrollTop) this.log.scrollTop = top - 8;
  };

  Chat.prototype.openSource = function (i, n) {
    var card = document.getElementById("pna-src-" + i + "-" + n);
    if (!card) return;
    card.open = true;
    this.log.scrollTop = this.offset(card) - 8;
  };

  function flash(button, text) {
    var was = button.textContent;
    button.textContent = text;
    setTimeout(function () { button.textContent = was; }, 2000);
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      var area = el("textarea", { style: "position:fixed;top:0;left:0;opacity:0", readonly: "" });
      area.value = text;
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) resolve(); else reject(new Error("copy"));
    });
  }

  // ---- asking --------------------------------------------------------------------------------------------
  Chat.prototype.send = function () {
    var q = this.box.value.trim();
    if (!q) { this.box.focus(); return; }
    if (q.length > MAX_CHARS) { this.setStatus(TEXT.tooLong, "warn"); return; }
    this.ask(q);
  };

  Chat.prototype.ask = function (q) {
    if (this.busy) return;
    if (!this.state.turns.length) this.log.textContent = ""; // the greeting goes
    this.state.turns.push({ question: q });
    this.state.draft = "";
    this.box.value = "";
    this.fit();
    this.save();
    var i = this.state.turns.length - 1;
    this.replaceTurn(i);
    this.showStart(i);
    if (!this.offline) this.stream(i); // while the server is away it waits its turn (see probe)
  };

  Chat.prototype.stream = function (i) {
    var self = this, turn = this.state.turns[i];
    this.busy = true;
    this.root.setAttribute("aria-busy", "true");
    var body = JSON.stringify({ question: turn.question, history: this.history(i) });
    fetch(new URL("ui/ask/stream", BASE), { method: "POST", headers: { "Content-Type": "application/json" }, body: body })
      .then(function (r) {
        if (r.status >= 500 || r.status === 404 || r.status === 429) throw { offline: true };
        if (!r.ok) { turn.error = r.status === 422 ? TEXT.tooLong : TEXT.failed; return; }
        return readEvents(r, function (event, data) {
          if (event === "token") { turn.streamed = (turn.streamed || "") + data.text; self.replaceTurn(i); }
          else if (event === "notice") { turn.notice = true; turn.streamed = ""; }
          else if (event === "answer") { turn.data = data; delete turn.streamed; }
          else if (event === "error") { turn.error = TEXT.failed; }
        }).then(function () { if (!turn.data && !turn.error) throw { offline: true }; });
      })
      .then(function () {
        self.done(i);
        if (self.offline) self.back();
        // Questions asked while the server was away go out one after another, oldest first.
        var next = self.state.turns.findIndex(function (t) { return !t.data && !t.error; });
        if (next >= 0) self.stream(next);
      }, function () {
        delete turn.streamed; // the answer is asked again from the start
        self.done(i);
        self.goOffline();
      });
  };

  Chat.prototype.done = function (i) {
    this.busy = false;
    this.root.removeAttribute("aria-busy");
    this.save();
    this.replaceTurn(i);
    this.showStart(i);
  };

  function readEvents(response, onEvent) {
    var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
    function handle(block) {
      var event = "message", data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) event = line.slice(6).trim();
        else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      });
      if (data.length) onEvent(event, JSON.parse(data.join("\n")));
    }
    function pump() {
      return reader.read().then(function (part) {
        buffer += decoder.decode(part.value || new Uint8Array(), { stream: !part.done });
        buffer = buffer.replace(/\r\n/g, "\n");
        var at;
        while ((at = buffer.indexOf("\n\n")) >= 0) { handle(buffer.slice(0, at)); buffer = buffer.slice(at + 2); }
        if (part.done) { if (buffer.trim()) handle(buffer); return; }
        return pump();
      });
    }
    return pump();
  }

  // ---- losing and finding the server ------------------------------------------------------------------------
  Chat.prototype.setStatus = function (text, kind) {
    this.status.textContent = text;
    this.status.className = "pna-status pna-status-" + (kind || "info");
    this.status.hidden = !text;
  };

  Chat.prototype.goOffline = function () {
    var self = this;
    if (!this.offline) {
      this.offline = true;
      this.setStatus(TEXT.offline, "warn");
      var self2 = this;
      this.state.turns.forEach(function (t, k) { if (!t.data && !t.error) self2.replaceTurn(k); });
    }
    clearTimeout(this.retryTimer);
    this.retryDelay = Math.min((this.retryDelay || 1000) * 1.5, 10000);
    this.retryTimer = setTimeout(function () { self.probe(); }, this.retryDelay);
  };

  Chat.prototype.probe = function () {
    var self = this;
    fetch(new URL("healthz", BASE), { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("not ready"); self.resend(); })
      .catch(function () { self.goOffline(); });
  };

  Chat.prototype.resend = function () {
    var i = this.state.turns.findIndex(function (t) { return !t.data && !t.error; });
    if (i < 0) { this.back(); return; }
    this.stream(i);
  };

  Chat.prototype.back = function () {
    var self = this;
    if (!this.offline) return;
    this.offline = false;
    this.retryDelay = 0;
    this.setStatus(TEXT.back, "ok");
    setTimeout(function () { if (!self.offline) self.setStatus("", "ok"); }, 3000);
  };

  // ---- feedback ------------------------------------------------------------------------------------------
  // A new rating carries an Idempotency-Key made once for it (kept until it is stored), so a retry after a failed
  // or timed-out post never stores it twice; a stored rating is changed with the token the server returned for it.
  function randomKey() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  Chat.prototype.post = function (payload, key) {
    var headers = { "Content-Type": "application/json" };
    if (key) headers["Idempotency-Key"] = key;
    return fetch(new URL("ui/feedback", BASE), { method: "POST", headers: headers, body: JSON.stringify(payload) })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); });
  };

  Chat.prototype.rate = function (i, rating) {
    var self = this, turn = this.state.turns[i], ans = turn.data.answer;
    var fb = turn.feedback || {};
    var key = fb.id ? null : (fb.key || randomKey());
    var payload = fb.id ? { feedback_id: fb.id, token: fb.token, rating: rating }
      : { channel: this.channel, rating: rating, question: ans.question, answer: ans.answer, citations: ans.citations,
          id: ans.id, mode: ans.mode };
    this.post(payload, key).then(function (res) {
      turn.feedback = { id: res.feedback_id, token: res.token, rating: rating, open: true };
      self.save();
      var box = self.replaceTurn(i).querySelector(".pna-comment");
      if (box) { self.reveal(box); box.querySelector("textarea").focus({ preventScroll: true }); }
    }, function () {
      turn.feedback = Object.assign({}, fb, { key: key || fb.key, status: TEXT.feedbackFailed });
      self.replaceTurn(i);
    });
  };

  Chat.prototype.comment = function (i, text) {
    var self = this, turn = this.state.turns[i], fb = turn.feedback || {};
    text = (text || "").trim();
    if (!text) { fb.open = false; fb.status = "已记录您的评价。"; self.replaceTurn(i); return; }
    this.post({ feedback_id: fb.id, token: fb.token, comment: text.slice(0, 2000) }).then(function () {
      fb.open = false; fb.status = TEXT.commentSaved; self.save(); self.replaceTurn(i);
    }, function () { fb.status = TEXT.feedbackFailed; self.replaceTurn(i); });
  };

  // ---- new conversation, export --------------------------------------------------------------------------
  Chat.prototype.reset = function () {
    if (this.busy) return;
    this.state = { v: 1, turns: [], draft: "" };
    this.box.value = "";
    this.save();
    this.setStatus("", "info");
    this.renderAll();
    this.box.focus({ preventScroll: true });
  };

  function stamp(d, sep) {
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return d.getFullYear() + sep + two(d.getMonth() + 1) + sep + two(d.getDate());
  }

  Chat.prototype.transcript = function () {
    var now = new Date();
    var lines = [this.title + "（" + this.doc + "）对话记录", "导出时间：" + stamp(now, "-") + " " +
                 now.toTimeString().slice(0, 5), ""];
    this.state.turns.forEach(function (t, k) {
      lines.push("问" + (k + 1) + "：" + t.question);
      lines.push("答：" + (t.data ? t.data.plain : (t.error || "（未回答）")));
      lines.push("");
    });
    return lines.join("\n");
  };

  Chat.prototype.exportText = function () {
    if (!this.state.turns.length) { this.setStatus("还没有对话可以导出。", "info"); return; }
    var now = new Date();
    var blob = new Blob(["\ufeff" + this.transcript()], { type: "text/plain;charset=utf-8" });
    var a = el("a", { href: URL.createObjectURL(blob), download: "政策问答对话记录-" + stamp(now, "") + "-" +
                      now.toTimeString().slice(0, 5).replace(":", "") + ".txt" });
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  };

  // ---- start: Gradio renders the root element after the page loads, possibly again later ------------------
  // Labels inside Gradio's own components that its translations do not cover (screen readers and tooltips read them).
  var GRADIO_LABELS = {
    "Copy table data": "复制表格数据", "Fullscreen": "全屏", "Exit fullscreen": "退出全屏", "More tabs": "更多标签页",
    "Open cell menu": "打开单元格菜单", "Dataframe": "数据表", "Table actions": "表格操作",
    "Gradio footer navigation": "页脚导航", "Stop Recording": "停止录制", "File upload": "上传文件",
    "Sort ascending": "升序排列", "Sort descending": "降序排列", "Clear sort": "取消排序", "Search": "搜索"
  };
  function translateLabels() {
    ["aria-label", "title", "alt"].forEach(function (attr) {
      Array.prototype.forEach.call(document.querySelectorAll("[" + attr + "]"), function (node) {
        var zh = GRADIO_LABELS[node.getAttribute(attr)];
        if (zh) node.setAttribute(attr, zh);
      });
    });
  }

  var chats = {};
  function attach() {
    translateLabels();
    var root = document.getElementById("pna-chat-root");
    if (!root || root.getAttribute("data-mounted")) return;
    var channel = root.getAttribute("data-channel") || "chat";
    var chat = chats[channel];
    if (chat) { chat.root = root; } else { chat = chats[channel] = new Chat(root); }
    chat.mount();
  }
  new MutationObserver(attach).observe(document.documentElement, { childList: true, subtree: true });
  attach();
  window.addEventListener("resize", function () { Object.keys(chats).forEach(function (k) { chats[k].size(); }); });
  window.addEventListener("online", function () { Object.keys(chats).forEach(function (k) { if (chats[k].offline) chats[k].probe(); }); });
  // The chat tab may be hidden when the page loads (?annex=1); size it when it shows.
  setInterval(function () {
    Object.keys(chats).forEach(function (k) { var c = chats[k]; if (c.root.isConnected && !c.root.style.height) c.size(); });
  }, 500);
  window.__pnaChat = chats;
})();
