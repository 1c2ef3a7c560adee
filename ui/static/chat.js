/* 政策问答 chat — fills #pna-chat-root (rendered by the Gradio page) with a chat that talks to /ui/ask/stream.
 *
 * The conversation is kept in the browser ("pna-chat:<channel>"): in this page's localStorage, or — in the widget
 * opened by widget.js on another site — in the host page's localStorage through postMessage (a browser that blocks
 * or partitions third-party storage would otherwise lose it), falling back to the frame's own storage, then to
 * memory. A reload or a server restart keeps it, and a question asked while the server is unreachable is kept and
 * sent when it answers again. A server error or a rate limit is shown as such, with 重试, and never queued.
 * Everything shown is built with textContent; no server or user text is ever parsed as HTML. */
(function () {
  "use strict";
  if (window.__pnaChat) return;
  var script = document.currentScript;
  var BASE = new URL("../../", script ? script.src : location.href); // the app's root, whatever page we are on
  var PARAMS = new URLSearchParams(location.search);
  var FORCED_THEME = /^(light|dark)$/.test(PARAMS.get("__theme") || "") ? PARAMS.get("__theme") : null;
  var EMBEDDED = window.parent !== window;
  var BRIDGED = EMBEDDED && PARAMS.get("pna_host") === "1"; // opened by widget.js: the host page keeps the conversation
  var MAX_CHARS = 2000;
  var HISTORY_TURNS = 10; // exchanges sent for resolving follow-ups
  var KEEP_TURNS = 100; // exchanges kept in the browser
  var KEEP_CHARS = 1500000; // and at most this much JSON (a 66-item list answer is ~40 000): well inside the quota
  // Characters that show nothing: a question made only of these is empty.
  var INVISIBLE = /[\s\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0]/g;
  var TEXT = {
    offline: "暂时连不上服务器。您的问题已保留，连接恢复后会自动发送。",
    back: "已重新连接。",
    waiting: "等待连接，恢复后自动发送…",
    answering: "正在回答",
    busy: "正在回答上一个问题，请稍候；也可以点“停止”。",
    failed: "抱歉，处理这个问题时出错了，请稍后再试。",
    server: "服务器出错了，这个问题没有回答成功。请稍后点“重试”。",
    rate: function (s) { return "提问太频繁了，请 " + s + " 秒后再试。"; },
    rateDone: "现在可以重试了。",
    stopped: "已停止回答。",
    tooLong: "问题太长了（最多" + MAX_CHARS + "字），请精简后再发送。",
    empty: "请输入问题内容（只有空格或不可见字符的问题无法回答）。",
    invalid: "这个问题无法处理，请换个说法再试。",
    fallback: "生成模型暂不可用，以下为依据通知原文整理的回答。",
    additionTitle: "生成模型的补充（已与通知原文逐句核对）",
    copied: "已复制",
    copyFailed: "复制失败，请手动选择文字复制",
    thanksUp: "感谢点赞！可以补充说明（可选）：",
    thanksDown: "感谢反馈，我们会改进。可以补充说明（可选）：",
    commentSaved: "已收到您的补充说明，谢谢！",
    feedbackFailed: "反馈保存失败，请稍后再试。",
    cleared: "已开始新对话。",
    restored: "已恢复之前的对话。",
    disclaimer: "仅依据通知原文作答，办理业务以当地人社部门答复为准。"
  };

  // ---- where the conversation is kept ----------------------------------------------------------------------
  var memory = {};
  var local = {
    get: function (key) {
      try { return Promise.resolve(localStorage.getItem(key)); }
      catch (e) { return Promise.resolve(memory[key] === undefined ? null : memory[key]); }
    },
    set: function (key, value) {
      memory[key] = value;
      try { localStorage.setItem(key, value); } catch (e) { /* blocked or full: memory keeps it for this page */ }
    }
  };
  function hostStorage() {
    var pending = {}, seq = 0, usable = true;
    window.addEventListener("message", function (e) {
      var m = e.data;
      if (e.source !== window.parent || !m || m.pna !== "storage-value" || !pending[m.id]) return;
      var done = pending[m.id];
      delete pending[m.id];
      done(m);
    });
    return {
      get: function (key) {
        if (!usable) return local.get(key);
        return new Promise(function (resolve) {
          var id = ++seq;
          var timer = setTimeout(function () { delete pending[id]; usable = false; resolve(local.get(key)); }, 1500);
          pending[id] = function (m) {
            clearTimeout(timer);
            if (m.ok) resolve(typeof m.value === "string" ? m.value : null);
            else { usable = false; resolve(local.get(key)); }
          };
          window.parent.postMessage({ pna: "storage-get", id: id, key: key }, "*");
        });
      },
      set: function (key, value) {
        if (!usable) { local.set(key, value); return; }
        memory[key] = value;
        window.parent.postMessage({ pna: "storage-set", key: key, value: value }, "*");
      }
    };
  }
  var storage = BRIDGED ? hostStorage() : local;
  function toParent(message) { if (EMBEDDED) window.parent.postMessage(message, "*"); }

  function emptyState() { return { v: 1, turns: [], draft: "" }; }
  function parseState(text) {
    try {
      var s = JSON.parse(text || "null");
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
    return emptyState();
  }

  // ---- light or dark: what Gradio decided for the page (the device's setting, or ?__theme=) ------------------
  function theme() {
    if (FORCED_THEME) return FORCED_THEME;
    if (document.body && document.body.classList.contains("dark")) return "dark";
    return "light";
  }

  // ---- state -----------------------------------------------------------------------------------------------
  function Chat(root) {
    var self = this;
    this.root = root;
    this.channel = root.getAttribute("data-channel") || "chat";
    this.key = "pna-chat:" + this.channel;
    this.examples = JSON.parse(root.getAttribute("data-examples") || "[]");
    this.doc = root.getAttribute("data-doc") || "";
    this.title = root.getAttribute("data-title") || "";
    this.state = emptyState();
    this.busy = false;
    this.offline = false;
    this.ready = storage.get(this.key).then(function (text) { self.state = parseState(text); });
  }

  Chat.prototype.save = function () {
    clearTimeout(this.draftTimer);
    this.state.turns = this.state.turns.slice(-KEEP_TURNS);
    var text = JSON.stringify(this.state);
    while (text.length > KEEP_CHARS && this.state.turns.length > 1) { // the oldest exchanges go first
      this.state.turns = this.state.turns.slice(Math.ceil(this.state.turns.length / 4));
      text = JSON.stringify(this.state);
    }
    storage.set(this.key, text);
  };

  // The draft is kept too, but not on every keystroke.
  Chat.prototype.saveSoon = function () {
    var self = this;
    clearTimeout(this.draftTimer);
    this.draftTimer = setTimeout(function () { self.save(); }, 400);
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

  function cardsOf(chat, turnIndex) {
    var turn = chat.state.turns[turnIndex];
    return turn && turn.data ? turn.data.cards || [] : [];
  }

  // The answer text: paragraphs, "- " / "1. " lists, **bold**, and source markers: [n] opens card n; a marker
  // naming a source, such as [第二条] or [附件第1项] in a generated answer, opens that source's card.
  var INLINE = /\*\*([^*\n]+)\*\*|\[([^\[\]\n]{1,12})\]/g;
  function markerOf(label, turnIndex, chat) {
    if (/^\d{1,2}$/.test(label)) return label;
    var card = cardsOf(chat, turnIndex).filter(function (c) { return c.label === label; })[0];
    return card ? String(card.marker) : null;
  }
  function ref(chat, turnIndex, n, item, title) {
    return el("a", {
      class: "pna-ref", href: "#", text: "[" + n + "]", title: title || null,
      "aria-label": "出处" + n + (item ? "，附件第" + item + "项" : ""),
      onclick: function (e) { e.preventDefault(); chat.openSource(turnIndex, n, item); }
    });
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
      else frag.appendChild(ref(chat, turnIndex, n, null, m[2] === n ? null : m[2]));
      last = INLINE.lastIndex;
    }
    if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
    return frag;
  }

  // A list line naming an annex item ("第1项 机械设备修理人员：电工") without a marker of its own gets one: the item's
  // own card when the answer cites it, else its entry in the list card.
  function listMarker(line, turnIndex, chat) {
    var m = /^(?:附件)?第(\d{1,3})项/.exec(line);
    if (!m || /\[[^\[\]\n]{1,12}\]/.test(line)) return null;
    var item = Number(m[1]), cards = cardsOf(chat, turnIndex);
    var own = cards.filter(function (c) { return c.source === "annex" && c.item === item; })[0];
    if (own) return ref(chat, turnIndex, String(own.marker), null, null);
    var list = cards.filter(function (c) {
      return c.source === "list" && (c.entries || []).some(function (e) { return e.item === item; });
    })[0];
    return list ? ref(chat, turnIndex, String(list.marker), item, null) : null;
  }

  function richText(text, turnIndex, chat) {
    var box = el("div", { class: "pna-a-text" });
    var list = null;
    (text || "").split("\n").forEach(function (line) {
      var bullet = /^\s*(?:[-*•・]\s+)(.*)$/.exec(line), numbered = /^\s*(\d+)[.)、]\s+(.*)$/.exec(line);
      if (bullet || numbered) {
        var tag = bullet ? "ul" : "ol", content = bullet ? bullet[1] : numbered[2];
        if (!list || list.tagName.toLowerCase() !== tag) { list = el(tag); box.appendChild(list); }
        var li = el("li");
        li.appendChild(inline(content, turnIndex, chat));
        var marker = listMarker(content, turnIndex, chat);
        if (marker) li.appendChild(marker);
        list.appendChild(li);
        return;
      }
      list = null;
      if (!line.trim()) return;
      var p = el("p");
      if (!box.firstChild) {
        // The direct answer is the first sentence: set it apart so that it is read first. A bare verdict
        // (是。/ 不是。/ 仍然有效。) keeps the sentence that says what it is about with it.
        var end = line.search(/[。！？!?]/);
        if (end >= 0 && line.slice(0, end).replace(/\[[^\[\]\n]{1,12}\]|\*\*/g, "").length <= 4) {
          var next = line.slice(end + 1).search(/[。！？!?]/);
          if (next >= 0) end = end + 1 + next;
        }
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

  function rowText(row) {
    return row.occupations.join("、") + "（实施部门：" + row.departments + "；" + row.when + "）";
  }

  // What a closed card shows under its title, so that a reader need not open every card.
  function preview(card) {
    if (card.source === "annex" && card.rows && card.rows.length) {
      return card.rows.map(function (r) { return r.occupations.join("、") + "：" + r.when; }).join("；");
    }
    if (card.source === "list") {
      return (card.entries || []).map(function (e) { return "第" + e.item + "项 " + e.qualification; }).join("、");
    }
    return (card.quote || "").replace(/\s+/g, " ");
  }

  function sourceCard(card, turnIndex, open) {
    var title = card.source === "annex" && card.qualification ? card.label + " · " + card.qualification : card.label;
    var summary = el("summary", {}, [el("span", { class: "pna-num", text: "[" + card.marker + "]" }),
      el("span", { class: "pna-sum" }, [el("span", { text: title }), el("span", { class: "pna-preview", text: preview(card) })])]);
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
    } else if (card.source === "list") {
      var ul = el("ul", { class: "pna-list-rows" });
      (card.entries || []).forEach(function (entry) {
        ul.appendChild(el("li", { "data-item": String(entry.item), id: "pna-src-" + turnIndex + "-" + card.marker + "-" + entry.item }, [
          el("b", { text: "第" + entry.item + "项 " + entry.qualification }), "：" + entry.rows.map(rowText).join("；")]));
      });
      body.appendChild(ul);
    } else {
      body.appendChild(el("blockquote", { text: card.quote || "（无引文）" }));
      if (card.clause_text) {
        body.appendChild(el("details", { class: "pna-clause" }, [
          el("summary", { text: "阅读" + card.label + "全文" }), el("p", { text: card.clause_text })]));
      }
    }
    return el("details", { class: "pna-card pna-card-" + card.source, id: "pna-src-" + turnIndex + "-" + card.marker,
                           open: open ? "" : null }, [summary, body]);
  }

  // ---- rendering -----------------------------------------------------------------------------------------
  Chat.prototype.mount = function () {
    var self = this;
    this.root.textContent = "";
    this.root.setAttribute("data-mounted", "1");
    this.applyTheme();
    this.status = el("div", { class: "pna-status", role: "status", hidden: "" });
    this.log = el("div", { class: "pna-log", role: "region", "aria-label": "对话记录", tabindex: "-1" });
    // The log is not a live region (it is rebuilt while an answer streams in); this announces each answer once.
    this.live = el("div", { class: "pna-sr", "aria-live": "polite", "aria-atomic": "true" });
    this.latest = el("button", { type: "button", class: "pna-latest", id: "pna-latest", text: "↓ 最新", hidden: "",
                                 "aria-label": "跳到最新回答", onclick: function () { self.jumpToLatest(); } });
    this.log.addEventListener("scroll", function () { self.updateLatest(); });
    this.box = el("textarea", { id: "pna-question", rows: "1", maxlength: String(MAX_CHARS), "aria-label": "输入问题",
                                placeholder: this.channel === "widget" || window.innerWidth < 520 ? "请输入您的问题"
                                  : "请输入问题，例如：电工证什么时候退出目录？" });
    this.box.value = this.state.draft || "";
    this.box.addEventListener("input", function () { self.state.draft = self.box.value; self.saveSoon(); self.fit(); });
    this.box.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); self.send(); }
    });
    this.sendButton = el("button", { type: "button", id: "pna-send", class: "pna-primary", text: "发送",
                                     onclick: function () { if (self.busy) self.stop(); else self.send(); } });
    // Common questions: in the empty chat; later in a row on a wide screen, behind 常见问题 on a phone.
    this.chips = el("div", { class: "pna-chips", role: "group", "aria-label": "常见问题" });
    var menu = el("div", { class: "pna-menu", id: "pna-examples-menu", role: "group", "aria-label": "常见问题", hidden: "" });
    var toggle = this.toggle = el("button", { type: "button", id: "pna-examples", class: "pna-tool pna-examples-toggle",
                                              text: "常见问题 ▴", "aria-expanded": "false", "aria-controls": "pna-examples-menu" });
    function showMenu(open) {
      menu.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? "常见问题 ▾" : "常见问题 ▴";
    }
    this.showMenu = showMenu;
    toggle.addEventListener("click", function () { showMenu(menu.hidden); });
    this.examples.forEach(function (q) {
      self.chips.appendChild(el("button", { type: "button", class: "pna-chip", text: q, onclick: function () { self.ask(q); } }));
      menu.appendChild(el("button", { type: "button", class: "pna-chip", text: q,
                                      onclick: function () { showMenu(false); self.ask(q); } }));
    });
    this.menu = menu;
    var tools = el("div", { class: "pna-tools" }, [
      el("button", { type: "button", id: "pna-new", class: "pna-tool", text: "新对话", title: "开始新对话（可撤销）",
                     onclick: function () { self.reset(); } }),
      el("button", { type: "button", id: "pna-export", class: "pna-tool", text: "导出对话", title: "把整个对话导出为纯文本文件",
                     onclick: function () { self.exportText(); } }),
      toggle, this.chips
    ]);
    var form = el("div", { class: "pna-form" }, [this.box, this.sendButton]);
    this.dock = el("div", { class: "pna-dock" }, [menu, form, tools, el("p", { class: "pna-disclaimer", text: TEXT.disclaimer })]);
    // The widget page has no title of its own: a heading for screen readers (the full page has its <h1>).
    if (this.channel === "widget") this.root.appendChild(el("h1", { class: "pna-sr", text: this.title + "（" + this.doc + "）" }));
    this.root.appendChild(this.status);
    this.root.appendChild(this.log);
    this.root.appendChild(this.latest);
    this.root.appendChild(this.live);
    this.root.appendChild(this.dock);
    this.renderAll();
    this.size();
    if (this.state.turns.length) this.showStart(this.state.turns.length - 1);
    var pending = this.state.turns.filter(function (t) { return !t.data && !t.error; });
    if (pending.length) this.resend();
    toParent({ pna: "ready" });
  };

  Chat.prototype.applyTheme = function () {
    if (this.root) this.root.setAttribute("data-theme", theme());
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
    this.box.style.height = Math.min(Math.max(this.box.scrollHeight, 44), 120) + "px";
  };

  Chat.prototype.renderAll = function () {
    var self = this;
    this.log.textContent = "";
    var empty = !this.state.turns.length;
    // The common questions show once: in the empty chat, or (after the first question) by the input.
    this.chips.hidden = empty;
    this.toggle.hidden = empty;
    if (empty) {
      this.showMenu(false);
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
    this.state.turns.forEach(function (t, i) {
      var node = self.renderTurn(t, i);
      self.log.appendChild(node);
      self.fold(node, i);
    });
    this.updateLatest();
  };

  Chat.prototype.renderTurn = function (turn, i) {
    var self = this;
    var node = el("article", { class: "pna-turn", "data-turn": String(i) });
    node.appendChild(el("div", { class: "pna-q", "data-testid": "user" }, [el("div", { class: "pna-bubble", text: turn.question })]));
    var a = el("div", { class: "pna-a", "data-testid": "bot" });
    node.appendChild(a);
    if (turn.error) {
      a.setAttribute("data-error", turn.errorKind || "failed");
      a.appendChild(el("p", { class: "pna-error", text: turn.error }));
      if (turn.errorKind && turn.errorKind !== "invalid" && i === this.state.turns.length - 1) a.appendChild(this.retryButton(i));
    } else if (!turn.data && !turn.offline) {
      if (turn.streamed) a.appendChild(richText(turn.streamed, i, this));
      if (!turn.streamed || this.busy) {
        a.appendChild(el("p", { class: "pna-typing" }, this.offline ? [TEXT.waiting]
          : [el("span", { class: "pna-dots", text: TEXT.answering })]));
      }
    } else {
      // turn.offline: the answer checked against the notice, shown whole while the model reads it again (issue 19);
      // turn.data: the final answer, with the model's checked addition (ans.addition) after it, if any.
      var d = turn.data || turn.offline, ans = d.answer, reading = !turn.data;
      var addition = reading ? (turn.addition || "") : (ans.addition || "");
      var main = ans.answer;
      if (!reading && addition && main.slice(-addition.length) === addition) main = main.slice(0, -addition.length);
      if (reading) a.setAttribute("aria-busy", "true");
      if (turn.notice) a.appendChild(el("p", { class: "pna-notice", text: TEXT.fallback }));
      a.appendChild(el("div", { class: "pna-fold" }, [richText(main, i, this)]));
      if (addition) {
        var extra = richText(addition, i, this);  // not the direct answer: no lead sentence of its own
        Array.prototype.forEach.call(extra.querySelectorAll(".pna-lead"), function (n) { n.classList.remove("pna-lead"); });
        a.appendChild(el("section", { class: "pna-addition", "aria-label": TEXT.additionTitle }, [
          el("h3", { class: "pna-addition-title", text: TEXT.additionTitle }), extra]));
      }
      // What is going on (the model reading, or what it added): shown here, announced by the live region.
      if (reading && turn.progress) a.appendChild(el("p", { class: "pna-progress" }, [el("span", { class: "pna-dots", text: turn.progress })]));
      else if (!reading && turn.progress) a.appendChild(el("p", { class: "pna-progress-done", text: turn.progress }));
      if (d.annex_link) {
        var href = new URL(d.annex_link, BASE).href;
        a.appendChild(el("p", { class: "pna-annex-link" }, [el("a", { href: href, target: this.channel === "widget" ? "_blank" : null,
          rel: "noopener", text: "在附件目录中查看完整列表 →" })]));
      }
      if (d.cards && d.cards.length) {
        var sources = el("section", { class: "pna-sources", "aria-label": "出处" },
                         [el("h2", { class: "pna-sources-title", text: "出处（" + d.cards.length + "）" })]);
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
      if (!reading) a.appendChild(this.actions(turn, i));
    }
    return node;
  };

  Chat.prototype.retryButton = function (i) {
    var self = this, turn = this.state.turns[i];
    var button = el("button", { type: "button", class: "pna-act pna-retry", text: "重试",
                                onclick: function () { self.retry(i); } });
    var left = turn.retryAt ? Math.ceil((turn.retryAt - Date.now()) / 1000) : 0;
    if (left > 0) {
      button.disabled = true;
      button.textContent = "重试（" + left + "秒）";
      clearTimeout(this.retryTick);
      this.retryTick = setTimeout(function () {
        if (self.state.turns[i] === turn && turn.error) {
          if (turn.retryAt <= Date.now()) self.setStatus(TEXT.rateDone, "info");
          self.replaceTurn(i);
        }
      }, 1000);
    }
    return button;
  };

  // Long answers (a 66-item list) are folded; 展开全文 shows the rest.
  Chat.prototype.fold = function (node, i) {
    var self = this, turn = this.state.turns[i];
    var box = node.querySelector(".pna-fold");
    if (!box || !turn || !turn.data || !box.getBoundingClientRect().width) return;
    box.classList.add("pna-folded");
    if (box.scrollHeight <= box.clientHeight + 60) { box.classList.remove("pna-folded"); return; }
    var count = box.querySelectorAll("li").length;
    var button = el("button", { type: "button", class: "pna-act pna-unfold", "aria-expanded": "false" });
    function show(open) {
      box.classList.toggle("pna-folded", !open);
      button.setAttribute("aria-expanded", String(open));
      button.textContent = open ? "收起" : "展开全文" + (count ? "（共" + count + "条）" : "");
    }
    show(!!turn.expanded);
    button.addEventListener("click", function () {
      turn.expanded = !turn.expanded;
      show(turn.expanded);
      if (!turn.expanded) self.reveal(node.querySelector(".pna-a"));
      self.updateLatest();
    });
    box.parentNode.insertBefore(button, box.nextSibling);
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
    this.fold(fresh, i);
    this.log.scrollTop = top; // a re-rendered turn does not move the reader
    this.updateLatest();
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
    this.updateLatest();
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

  // ↓ 最新 shows when the reader is more than a screen above the end of the conversation.
  Chat.prototype.updateLatest = function () {
    if (!this.latest) return;
    var away = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight;
    var show = this.state.turns.length > 0 && away > Math.max(200, this.log.clientHeight);
    if (show) this.latest.style.bottom = (this.dock.offsetHeight + 10) + "px";
    if (this.latest.hidden === show) this.latest.hidden = !show;
  };

  Chat.prototype.jumpToLatest = function () {
    var last = this.log.querySelector('[data-turn="' + (this.state.turns.length - 1) + '"]');
    this.log.scrollTop = this.log.scrollHeight;
    this.updateLatest();
    var target = last && last.querySelector(".pna-actions button, .pna-retry");
    if (target) target.focus({ preventScroll: true }); else this.box.focus({ preventScroll: true });
  };

  Chat.prototype.openSource = function (i, n, item) {
    var card = document.getElementById("pna-src-" + i + "-" + n);
    if (!card) return;
    card.open = true;
    var target = card;
    if (item) {
      Array.prototype.forEach.call(card.querySelectorAll(".pna-hit"), function (r) { r.classList.remove("pna-hit"); });
      var row = card.querySelector('[data-item="' + item + '"]');
      if (row) { row.classList.add("pna-hit"); target = row; }
    }
    this.log.scrollTop = this.offset(target) - 8;
    card.querySelector("summary").focus({ preventScroll: true }); // keyboard users land on the source
    this.updateLatest();
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

  function speakable(text) {
    return (text || "").replace(/\*\*/g, "").replace(/\[[^\[\]\n]{1,12}\]/g, "").replace(/^\s*[-*•・]\s+/gm, "");
  }

  // ---- asking --------------------------------------------------------------------------------------------
  Chat.prototype.send = function () {
    var raw = this.box.value;
    if (!raw.replace(INVISIBLE, "")) {
      if (raw) this.setStatus(TEXT.empty, "warn");
      this.box.focus();
      return;
    }
    var q = raw.trim();
    if (q.length > MAX_CHARS) { this.setStatus(TEXT.tooLong, "warn"); return; }
    this.ask(q);
  };

  Chat.prototype.ask = function (q) {
    if (this.busy) { this.setStatus(TEXT.busy, "info"); return; }
    if (!this.state.turns.length) this.log.textContent = ""; // the greeting goes
    this.undoState = null;
    if (this.status.classList.contains("pna-status-warn") && !this.offline) this.setStatus("", "info");
    // An earlier failed question is not asked again by itself: only its 重试 button (on the last turn) would.
    var prev = this.state.turns.length - 1;
    this.state.turns.push({ question: q });
    if (prev >= 0 && this.state.turns[prev].error) this.replaceTurn(prev);
    this.state.draft = "";
    this.box.value = "";
    this.fit();
    this.save();
    this.chips.hidden = false;
    this.toggle.hidden = false;
    var i = this.state.turns.length - 1;
    this.replaceTurn(i);
    this.showStart(i);
    if (!this.offline) this.stream(i); // while the server is away it waits its turn (see probe)
  };

  Chat.prototype.retry = function (i) {
    var turn = this.state.turns[i];
    if (this.busy || !turn) return;
    delete turn.error; delete turn.errorKind; delete turn.retryAt;
    this.setStatus("", "info");
    this.save();
    this.replaceTurn(i);
    if (!this.offline) this.stream(i);
  };

  Chat.prototype.setBusy = function (busy) {
    this.busy = busy;
    if (busy) this.root.setAttribute("aria-busy", "true"); else this.root.removeAttribute("aria-busy");
    this.sendButton.textContent = busy ? "停止" : "发送";
    this.sendButton.classList.toggle("pna-stop", busy);
    this.sendButton.setAttribute("aria-label", busy ? "停止回答" : "发送");
  };

  Chat.prototype.stop = function () {
    if (this.controller) this.controller.abort();
  };

  Chat.prototype.stream = function (i) {
    var self = this, turn = this.state.turns[i];
    var controller = window.AbortController ? new AbortController() : null;
    this.controller = controller;
    this.setBusy(true);
    this.replaceTurn(i);
    var body = JSON.stringify({ question: turn.question, history: this.history(i) });
    fetch(new URL("ui/ask/stream", BASE), { method: "POST", headers: { "Content-Type": "application/json" }, body: body,
                                            signal: controller ? controller.signal : undefined })
      .then(function (r) {
        if (r.status === 429) {
          var wait = parseInt(r.headers.get("Retry-After") || "", 10);
          throw { kind: "rate", wait: wait > 0 && wait < 3600 ? wait : 30 };
        }
        if (r.status === 422 || r.status === 413 || r.status === 400) {
          return r.json().catch(function () { return {}; }).then(function (b) {
            throw { kind: "invalid", text: /long|长|2000/.test(JSON.stringify(b)) ? TEXT.tooLong : TEXT.invalid };
          });
        }
        if (!r.ok) throw { kind: "server" };
        return readEvents(r, function (event, data) {
          if (event === "token") {
            turn.streamed = (turn.streamed || "") + data.text;
            if (data.part === "addition") turn.addition = (turn.addition || "") + data.text.replace(/^\n/, "");
            self.replaceTurn(i);
          }
          else if (event === "notice") { turn.notice = true; turn.streamed = ""; }
          else if (event === "offline") {
            // the checked offline answer, whole, while the model reads: shown with its sources and announced
            turn.offline = data;
            turn.spoken = speakable(data.answer.answer);
            self.replaceTurn(i);
          }
          else if (event === "status") {
            turn.progress = data.text;
            self.replaceTurn(i);
            if (data.state === "reading") { self.announce((turn.spoken ? turn.spoken + " " : "") + data.text); delete turn.spoken; }
          }
          else if (event === "answer") { turn.data = data; delete turn.streamed; }
          else if (event === "error") { throw { kind: "server" }; }
        }).then(function () { if (!turn.data) throw { kind: "server" }; });
      })
      .then(function () {
        var announced = !!turn.offline, added = turn.data.answer.addition;
        self.settle(turn);
        self.done(i);
        // an answer whose offline part was announced already: what the model added, or that it added nothing
        if (!announced) self.announce(speakable(turn.data.answer.answer));
        else self.announce((added ? TEXT.additionTitle + "：" + speakable(added) + " " : "") + (turn.progress || ""));
        if (self.offline) self.back();
        // Questions asked while the server was away go out one after another, oldest first.
        var next = self.state.turns.findIndex(function (t) { return !t.data && !t.error; });
        if (next >= 0) self.stream(next);
      }, function (err) {
        delete turn.streamed; // an answer is asked again from the start
        if (turn.offline && !turn.data) {
          // stopped or broken while the model was reading: the checked offline answer, already shown, stands
          turn.data = turn.offline;
          turn.progress = controller && controller.signal.aborted ? TEXT.stopped : "";
          self.settle(turn);
          self.done(i);
          return;
        }
        if (controller && controller.signal.aborted) {
          turn.error = TEXT.stopped; turn.errorKind = "stopped";
        } else if (err && err.kind === "rate") {
          turn.error = TEXT.rate(err.wait); turn.errorKind = "rate"; turn.retryAt = Date.now() + err.wait * 1000;
          self.setStatus(TEXT.rate(err.wait), "warn");
        } else if (err && err.kind === "server") {
          turn.error = TEXT.server; turn.errorKind = "server";
        } else if (err && err.kind === "invalid") {
          turn.error = err.text; turn.errorKind = "invalid";
        } else { // the network: the server is away; the question waits for it
          self.done(i);
          self.goOffline();
          return;
        }
        self.done(i);
        self.live.textContent = turn.error;
      });
  };

  // An answer that is over: the reading state and the streamed pieces go; the last status line stays as a note.
  Chat.prototype.settle = function (turn) {
    delete turn.offline; delete turn.addition; delete turn.streamed; delete turn.spoken;
  };

  // The polite live region (aria-atomic) says one whole thing at a time: the offline answer with the status line
  // that follows it, then the model's addition (or that it added nothing).
  Chat.prototype.announce = function (text) {
    this.live.textContent = text;
  };

  Chat.prototype.done = function (i) {
    this.controller = null;
    this.setBusy(false);
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

  // ---- status line, losing and finding the server ----------------------------------------------------------
  Chat.prototype.setStatus = function (text, kind, action) {
    this.status.textContent = "";
    if (text) this.status.appendChild(el("span", { text: text }));
    if (text && action) this.status.appendChild(el("button", { type: "button", class: "pna-act", text: action.text, onclick: action.onclick }));
    this.status.className = "pna-status pna-status-" + (kind || "info");
    this.status.hidden = !text;
  };

  Chat.prototype.goOffline = function () {
    var self = this;
    if (!this.offline) {
      this.offline = true;
      this.setStatus(TEXT.offline, "warn");
      this.state.turns.forEach(function (t, k) { if (!t.data && !t.error) self.replaceTurn(k); });
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
    setTimeout(function () { if (!self.offline && self.status.textContent === TEXT.back) self.setStatus("", "ok"); }, 3000);
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

  // ---- new conversation (with 撤销), export ----------------------------------------------------------------
  Chat.prototype.reset = function () {
    var self = this;
    if (this.busy) this.stop();
    if (!this.state.turns.length) { this.box.focus({ preventScroll: true }); return; }
    this.undoState = this.state;
    this.state = emptyState();
    this.box.value = "";
    this.save();
    this.renderAll();
    this.setStatus(TEXT.cleared, "info", { text: "撤销", onclick: function () { self.undo(); } });
    this.box.focus({ preventScroll: true });
  };

  Chat.prototype.undo = function () {
    var self = this;
    if (!this.undoState) return;
    this.state = this.undoState;
    this.undoState = null;
    this.save();
    this.renderAll();
    if (this.state.turns.length) this.showStart(this.state.turns.length - 1);
    this.setStatus(TEXT.restored, "ok");
    setTimeout(function () { if (self.status.textContent === TEXT.restored) self.setStatus("", "ok"); }, 3000);
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

  // ---- keyboard in the widget: Esc closes the panel; the host page moves focus in ---------------------------
  Chat.prototype.focusEdge = function (where) {
    if (where === "last") {
      var all = Array.prototype.filter.call(this.root.querySelectorAll("button, a[href], textarea, summary"), function (n) {
        return !n.disabled && n.getClientRects().length > 0;
      });
      if (all.length) { all[all.length - 1].focus(); return; }
    }
    this.box.focus();
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
    root.setAttribute("data-mounted", "0");
    var channel = root.getAttribute("data-channel") || "chat";
    var chat = chats[channel];
    if (chat) { chat.root = root; } else { chat = chats[channel] = new Chat(root); }
    chat.ready.then(function () { if (chat.root === root) chat.mount(); });
  }
  function each(fn) { Object.keys(chats).forEach(function (k) { fn(chats[k]); }); }
  new MutationObserver(attach).observe(document.documentElement, { childList: true, subtree: true });
  attach();
  function watchTheme() {
    if (!document.body) return;
    new MutationObserver(function () { each(function (c) { c.applyTheme(); }); })
      .observe(document.body, { attributes: true, attributeFilter: ["class"] });
  }
  if (document.body) watchTheme(); else document.addEventListener("DOMContentLoaded", watchTheme);
  window.addEventListener("resize", function () { each(function (c) { c.size(); }); });
  window.addEventListener("pagehide", function () { each(function (c) { if (c.draftTimer) c.save(); }); });
  window.addEventListener("online", function () { each(function (c) { if (c.offline) c.probe(); }); });
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    var open = false;
    each(function (c) { if (c.menu && !c.menu.hidden) { c.showMenu(false); open = true; } });
    if (!open) toParent({ pna: "close" });
  });
  window.addEventListener("message", function (e) {
    var m = e.data;
    if (e.source !== window.parent || !m || m.pna !== "focus") return;
    each(function (c) { if (c.root && c.root.isConnected && c.box) c.focusEdge(m.where); });
  });
  // The chat tab may be hidden when the page loads (?annex=1); size it when it shows.
  setInterval(function () {
    each(function (c) { if (c.root.isConnected && c.box && !c.root.style.height) c.size(); });
  }, 500);
  window.__pnaChat = chats;
})();
