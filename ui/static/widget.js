/* 政策问答小窗 — one <script> tag puts a floating "政策问答" button on any page; it opens the assistant's
 * compact chat (/widget/) in a dialog. Options as data- attributes on the <script> tag (docs/widget.md):
 *   data-title="政策问答"      button and panel title
 *   data-position="right"      "right" (default) or "left"
 *   data-offset-x="20"         distance from the side, px (or any CSS length), to clear the page's own buttons
 *   data-offset-y="20"         distance from the bottom
 *   data-theme="auto"          "light" or "dark" to match the page; "auto" follows the device
 *   data-storage="host"        "host" keeps the conversation in this page's localStorage (survives browsers that
 *                              block third-party storage); "frame" leaves it to the widget's own origin
 *   data-open="false"          "true" opens the panel when the page loads
 * The panel is a modal dialog: focus moves into it on open (the question box), Tab stays inside it, Esc or × closes
 * it and focus returns to the button. Everything it adds is prefixed "pna-w-" so it cannot clash with the page. */
(function () {
  "use strict";
  if (window.__pnaWidget) return;
  var script = document.currentScript;
  if (!script) return;
  function attr(name, fallback) { var v = script.getAttribute("data-" + name); return v === null || v === "" ? fallback : v; }
  function length(v, fallback) { v = String(v || fallback).trim(); return /^\d+(\.\d+)?$/.test(v) ? v + "px" : /^[\w.%()+\- ]+$/.test(v) ? v : fallback + "px"; }
  var widgetUrl = new URL("widget/", script.src);
  var widgetOrigin = widgetUrl.origin;
  var title = attr("title", "政策问答");
  var side = attr("position", "right") === "left" ? "left" : "right";
  var dx = length(attr("offset-x", "20"), "20"), dy = length(attr("offset-y", "20"), "20");
  var theme = /^(light|dark)$/.test(attr("theme", "")) ? attr("theme", "") : null;
  var hostStorage = attr("storage", "host") !== "frame";
  if (hostStorage) widgetUrl.searchParams.set("pna_host", "1");
  if (theme) widgetUrl.searchParams.set("__theme", theme);
  var dark = theme === "dark" || (!theme && window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches);

  var font = "system-ui,'PingFang SC','Microsoft YaHei',sans-serif";
  var css =
    ".pna-w-button{position:fixed;bottom:" + dy + ";" + side + ":" + dx + ";z-index:2147483000;display:flex;align-items:center;" +
    "gap:6px;min-height:44px;padding:12px 18px;border:0;border-radius:999px;background:#1d4ed8;color:#fff;font:600 15px/1.2 " + font + ";" +
    "box-shadow:0 6px 20px rgba(29,78,216,.35);cursor:pointer}" +
    ".pna-w-button:hover{background:#1e40af}.pna-w-button:focus-visible{outline:3px solid #93c5fd;outline-offset:2px}" +
    ".pna-w-panel{position:fixed;bottom:calc(" + dy + " + 64px);" + side + ":" + dx + ";z-index:2147483000;" +
    "width:min(380px,calc(100vw - 24px));height:600px;max-height:calc(100vh - " + dy + " - 84px);display:flex;flex-direction:column;" +
    "background:" + (dark ? "#0f172a" : "#fff") + ";border-radius:14px;overflow:hidden;overscroll-behavior:contain;" +
    "box-shadow:0 12px 40px rgba(15,23,42,.28);border:1px solid " + (dark ? "#334155" : "#e2e8f0") + "}" +
    ".pna-w-panel[hidden]{display:none}" +
    ".pna-w-head{display:flex;align-items:center;justify-content:space-between;padding:2px 4px 2px 12px;background:#1d4ed8;" +
    "color:#fff;font:600 14px/1.4 " + font + ";touch-action:none}" +
    ".pna-w-close{border:0;background:transparent;color:#fff;font-size:22px;line-height:1;cursor:pointer;min-width:44px;min-height:44px}" +
    ".pna-w-close:focus-visible{outline:3px solid #fff;outline-offset:-4px}" +
    ".pna-w-frame{flex:1;width:100%;border:0;background:transparent}" +
    ".pna-w-trap{position:absolute;width:1px;height:1px;overflow:hidden;opacity:0}" +
    // On a phone the panel fills the screen; the launcher then hides (the panel has its own ×), so it never
    // covers the panel's input or comment box.
    "@media (max-width:480px){.pna-w-panel{inset:0;width:auto;height:auto;max-height:none;border-radius:0;border:0}" +
    ".pna-w-button[aria-expanded=true]{display:none}}";
  var style = document.createElement("style");
  style.textContent = css;
  document.head.appendChild(style);

  var button = document.createElement("button");
  button.type = "button";
  button.className = "pna-w-button";
  button.setAttribute("aria-haspopup", "dialog");
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", "pna-w-panel");
  var svgNS = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(svgNS, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("width", "18");
  icon.setAttribute("height", "18");
  icon.setAttribute("aria-hidden", "true");
  var path = document.createElementNS(svgNS, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6v2h2V9H7zm4 0v2h2V9h-2zm4 0v2h2V9h-2z");
  icon.appendChild(path);
  var text = document.createElement("span");
  text.textContent = title;
  button.appendChild(icon);
  button.appendChild(text);

  var panel = document.createElement("div");
  panel.className = "pna-w-panel";
  panel.id = "pna-w-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-modal", "true");
  panel.setAttribute("aria-labelledby", "pna-w-title");
  panel.hidden = true;
  var head = document.createElement("div");
  head.className = "pna-w-head";
  var label = document.createElement("span");
  label.id = "pna-w-title";
  label.textContent = title + " · 人社厅发〔2020〕80号";
  var close = document.createElement("button");
  close.type = "button";
  close.className = "pna-w-close";
  close.setAttribute("aria-label", "关闭");
  close.textContent = "×";
  head.appendChild(label);
  head.appendChild(close);
  var frame = document.createElement("iframe");
  frame.className = "pna-w-frame";
  frame.title = title;
  frame.setAttribute("allow", "clipboard-write");
  // Focus trap: Tab past the chat's last control lands on `last` and goes round to ×; Shift+Tab before × lands on
  // `first` and goes to the chat's last control.
  function trap(where) {
    var t = document.createElement("span");
    t.className = "pna-w-trap";
    t.tabIndex = 0;
    t.setAttribute("aria-hidden", "true");
    t.addEventListener("focus", function () {
      if (where === "last") close.focus();
      else focusFrame("last");
    });
    return t;
  }
  panel.appendChild(trap("first"));
  panel.appendChild(head);
  panel.appendChild(frame);
  panel.appendChild(trap("last"));
  // Scrolling over the header must not scroll the page behind the panel.
  head.addEventListener("wheel", function (e) { e.preventDefault(); }, { passive: false });

  var ready = false, wantFocus = false;
  function focusFrame(where) {
    if (!ready) { wantFocus = where || "first"; close.focus(); return; }
    frame.focus();
    frame.contentWindow.postMessage({ pna: "focus", where: where || "first" }, widgetOrigin);
  }

  function isOpen() { return !panel.hidden; }
  function setOpen(open) {
    if (open === isOpen()) return;
    if (open && !frame.getAttribute("src")) frame.src = widgetUrl.href; // loaded on first open only
    panel.hidden = !open;
    button.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) focusFrame("first");
    else { wantFocus = false; button.focus(); }
  }
  button.addEventListener("click", function () { setOpen(!isOpen()); });
  close.addEventListener("click", function () { setOpen(false); });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape" && isOpen()) setOpen(false); });

  // Messages from the chat in the frame: ready, close (Esc inside it), and the conversation kept in this page.
  var PREFIX = "pna-widget:" + widgetOrigin + ":";
  window.addEventListener("message", function (e) {
    var m = e.data;
    if (e.origin !== widgetOrigin || e.source !== frame.contentWindow || !m || typeof m.pna !== "string") return;
    if (m.pna === "ready") {
      ready = true;
      if (wantFocus && isOpen()) { var where = wantFocus; wantFocus = false; focusFrame(where); }
    } else if (m.pna === "close") {
      setOpen(false);
    } else if (m.pna === "storage-get" && hostStorage) {
      var reply = { pna: "storage-value", id: m.id, ok: true, value: null };
      try { reply.value = localStorage.getItem(PREFIX + String(m.key)); } catch (err) { reply.ok = false; }
      frame.contentWindow.postMessage(reply, widgetOrigin);
    } else if (m.pna === "storage-set" && hostStorage && typeof m.value === "string") {
      try { localStorage.setItem(PREFIX + String(m.key), m.value); } catch (err) { /* full or blocked: kept in the frame for now */ }
    }
  });

  function mount() {
    // The button first, then the dialog: Tab reaches the dialog right after the button that opened it.
    document.body.appendChild(button);
    document.body.appendChild(panel);
    if (attr("open", "false") === "true") {
      frame.src = widgetUrl.href;
      panel.hidden = false;
      button.setAttribute("aria-expanded", "true");
    }
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
  window.__pnaWidget = { open: function () { setOpen(true); }, close: function () { setOpen(false); } };
})();
