/* ptutor: let the widget manager find its own fonts and front ends.
 *
 * @jupyter-widgets/html-manager's embed-amd.js registers its bundles with require.js by name, and each
 * bundle looks for its font files next to the URL require.js gives that name. With no paths
 * configured that URL is the page's own folder (chapters/@jupyter-widgets/...), where nothing lives,
 * so every widget page asked for six fonts that do not exist. This script is loaded before the
 * widget scripts; when the embed-amd.js tag appears it points those names at the folder the tag
 * loads from (the CDN, or _static/vendor/ in an offline build) before the bundle runs.
 */
(function () {
  "use strict";
  var NAMES = ["base", "base7", "controls", "controls7", "html-manager"];

  function configure(script) {
    if (typeof window.requirejs === "undefined") return false;
    var dist = script.src.slice(0, script.src.lastIndexOf("/"));  // .../html-manager@<version>/dist
    var paths = {"@jupyter-widgets/html-manager/dist": dist};
    NAMES.forEach(function (name) { paths["@jupyter-widgets/" + name] = dist + "/" + name; });
    window.requirejs.config({paths: paths});
    return true;
  }

  function embedTag(node) {
    return node.tagName === "SCRIPT" && node.hasAttribute("data-jupyter-widgets-cdn") && node.src;
  }

  // The parser inserts the tag, then runs the pending microtasks (this observer), then the script.
  var observer = new MutationObserver(function (records) {
    records.forEach(function (record) {
      record.addedNodes.forEach(function (node) {
        if (embedTag(node) && configure(node)) observer.disconnect();
      });
    });
  });
  observer.observe(document.documentElement, {childList: true, subtree: true});
  document.addEventListener("DOMContentLoaded", function () { observer.disconnect(); });
})();
