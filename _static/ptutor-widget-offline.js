/* ptutor: say so where an interactive widget could not be drawn (its JavaScript did not load).
 *
 * Widget outputs reach the built page as <script type="application/vnd.jupyter.widget-view+json">
 * tags; @jupyter-widgets/html-manager (loaded from a CDN) draws each one into a
 * <div class="widget-subarea"> it inserts just before the tag. An offline reader, a blocked CDN,
 * or a page opened as a file (browsers block module scripts on file:// pages) gets nothing at
 * all: after a grace period this script puts a visible note, naming the likely cause, in that place,
 * and removes it again if the widget shows up later (slow network). Jupyter Book includes every
 * .js file of the book's _static/ folder in each page.
 */
(function () {
  "use strict";
  var VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]';
  var NOTE = "ptutor-widget-offline";
  var GRACE_MS = 10000, RECHECK_MS = 2000, GIVE_UP_MS = 120000;

  function drawn(tag) {
    var area = tag.previousElementSibling;
    return !!(area && area.classList.contains("widget-subarea") && area.childElementCount > 0 &&
              !area.querySelector(".jupyter-widgets-error-widget"));
  }

  function note() {
    var div = document.createElement("div");
    div.className = NOTE;
    div.setAttribute("role", "note");
    div.style.cssText = "border-left:4px solid #e0a800;background:#fff8e1;padding:6px 10px;margin:6px 0;font-size:0.9em";
    // a page opened as a file: the scripts may all be there, but browsers block module scripts on file:// pages
    div.textContent = location.protocol === "file:" ?
      "This interactive widget could not be drawn: the page was opened as a file (file://), and browsers " +
      "block the module scripts that draw widgets on such pages. Serve the book's folder instead, e.g. " +
      "python -m http.server -d _build/html, and open http://localhost:8000/." :
      "This interactive widget could not be drawn: its JavaScript (from cdn.jsdelivr.net) " +
      "did not load. Are you offline, or is the CDN blocked? Reload when online, or open this chapter in " +
      "Jupyter or Colab (launch button at the top) to run it.";
    return div;
  }

  function check(showNotes) {
    var tags = document.querySelectorAll(VIEW);
    var missing = 0;
    for (var i = 0; i < tags.length; i++) {
      var tag = tags[i], parent = tag.parentElement;
      if (!parent) continue;
      var existing = parent.querySelector(":scope > ." + NOTE);
      if (drawn(tag)) {
        if (existing) existing.remove();
      } else {
        missing++;
        if (showNotes && !existing) parent.insertBefore(note(), tag);
      }
    }
    return missing;
  }

  function start() {
    if (!document.querySelector(VIEW)) return;
    var loaderMissing = typeof window.requirejs === "undefined" && typeof window.require === "undefined";
    var started = Date.now();
    setTimeout(function tick() {
      var missing = check(true);
      if (missing && Date.now() - started < GIVE_UP_MS) setTimeout(tick, RECHECK_MS);
    }, loaderMissing ? 0 : GRACE_MS);
  }

  if (document.readyState === "complete") start();
  else window.addEventListener("load", start);
})();
