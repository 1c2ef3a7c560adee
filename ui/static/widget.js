/* 政策问答小窗 — one <script> tag puts a floating "政策问答" button on any page; it opens the assistant's
 * compact chat (/widget/) in a panel. Options as data- attributes on the <script> tag:
 *   data-title="政策问答"      button and panel title
 *   data-position="right"      "right" (default) or "left"
 *   data-open="false"          "true" opens the panel when the page loads
 * Everything it adds is prefixed "pna-w-" so it cannot clash with the host page. */
(function () {
  "use strict";
  if (window.__pnaWidget) return;
  var script = document.currentScript;
  if (!script) return;
  var widgetUrl = new URL("widget/", script.src).href;
  var title = script.getAttribute("data-title") || "政策问答";
  var side = script.getAttribute("data-position") === "left" ? "left" : "right";

  var css =
    ".pna-w-button{position:fixed;bottom:20px;" + side + ":20px;z-index:2147483000;display:flex;align-items:center;" +
    "gap:6px;padding:12px 18px;border:0;border-radius:999px;background:#2563eb;color:#fff;font:600 15px/1.2 system-ui," +
    "'PingFang SC','Microsoft YaHei',sans-serif;box-shadow:0 6px 20px rgba(37,99,235,.35);cursor:pointer}" +
    ".pna-w-button:hover{background:#1d4ed8}.pna-w-button:focus-visible{outline:3px solid #93c5fd;outline-offset:2px}" +
    ".pna-w-panel{position:fixed;bottom:84px;" + side + ":20px;z-index:2147483000;width:380px;height:600px;" +
    "max-height:calc(100vh - 104px);display:flex;flex-direction:column;background:#fff;border-radius:14px;" +
    "overflow:hidden;box-shadow:0 12px 40px rgba(15,23,42,.28);border:1px solid #e2e8f0}" +
    ".pna-w-panel[hidden]{display:none}" +
    ".pna-w-head{display:flex;align-items:center;justify-content:space-between;padding:8px 12px;background:#2563eb;" +
    "color:#fff;font:600 14px/1.4 system-ui,'PingFang SC','Microsoft YaHei',sans-serif}" +
    ".pna-w-close{border:0;background:transparent;color:#fff;font-size:20px;line-height:1;cursor:pointer;padding:2px 6px}" +
    ".pna-w-frame{flex:1;width:100%;border:0;background:#fff}" +
    // On a phone the panel fills the screen; the launcher then hides (the panel has its own ×), so it never
    // covers the panel's input or comment box.
    "@media (max-width:480px){.pna-w-panel{inset:0;width:auto;height:auto;max-height:none;border-radius:0}" +
    ".pna-w-button[aria-expanded=true]{display:none}}";
  var style = document.createElement("style");
  style.textContent = css;
  document.head.appendChild(style);

  var button = document.createElement("button");
  button.type = "button";
  button.className = "pna-w-button";
  button.setAttribute("aria-haspopup", "dialog");
  button.setAttribute("aria-expanded", "false");
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
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);
  panel.hidden = true;
  var head = document.createElement("div");
  head.className = "pna-w-head";
  var label = document.createElement("span");
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
  panel.appendChild(head);
  panel.appendChild(frame);

  function setOpen(open) {
    if (open && !frame.getAttribute("src")) frame.src = widgetUrl; // loaded on first open only
    panel.hidden = !open;
    button.setAttribute("aria-expanded", open ? "true" : "false");
    if (!open) button.focus();
  }
  button.addEventListener("click", function () { setOpen(panel.hidden); });
  close.addEventListener("click", function () { setOpen(false); });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape" && !panel.hidden) setOpen(false); });

  function mount() {
    document.body.appendChild(panel);
    document.body.appendChild(button);
    if (script.getAttribute("data-open") === "true") setOpen(true);
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
  window.__pnaWidget = { open: function () { setOpen(true); }, close: function () { setOpen(false); } };
})();
