// Loaded by myst-nb (nb_ipywidgets_js in _config.yml) after require.js and before the vendored
// @jupyter-widgets/html-manager embed-amd.js, on pages that embed widget state.
(function () {
  "use strict";
  var here = (document.currentScript && document.currentScript.src) || document.baseURI;
  var base = new URL("vendor/html-manager/", here).href; // .../_static/vendor/html-manager/
  var dir = base.replace(/\/$/, "");

  // 1. The bundles compute their webpack public path (where their icon fonts live) from their
  //    AMD module URL, which RequireJS resolves against the *page*: fonts 404 on every page in a
  //    subfolder. Point the module ids at the vendored folder, and set the assets path the
  //    html-manager reads.
  window.__jupyter_widgets_assets_path__ = base;
  if (window.requirejs && window.requirejs.config) {
    window.requirejs.config({
      paths: {
        "@jupyter-widgets/html-manager/dist": dir,
        "@jupyter-widgets": dir,
      },
    });
  }

  // 2. ipywidgets' typeset() speaks MathJax 2 (`MathJax.Hub.Queue`) whenever window.MathJax
  //    exists; the book loads MathJax 3, so every widget with a description threw
  //    "Cannot read properties of undefined (reading 'Queue')". Translate to MathJax 3.
  //    MathJax is loaded with `defer`, so it exists at DOMContentLoaded, and the html-manager
  //    renders the widgets at `load`, after this runs.
  function installHubShim() {
    var MJ = window.MathJax;
    if (!MJ || MJ.Hub || !MJ.version || String(MJ.version).charAt(0) !== "3") return;
    MJ.Hub = {
      Queue: function () {
        var elements = [];
        for (var i = 0; i < arguments.length; i++) {
          var job = arguments[i];
          if (Array.isArray(job) && job[0] === "Typeset" && job[2]) elements.push(job[2]);
        }
        var ready = (MJ.startup && MJ.startup.promise) || Promise.resolve();
        return ready
          .then(function () {
            return MJ.typesetPromise ? MJ.typesetPromise(elements.length ? elements : undefined) : null;
          })
          .catch(function (err) {
            console.warn("MathJax typeset of a widget failed:", err);
          });
      },
    };
  }
  installHubShim();
  document.addEventListener("DOMContentLoaded", installHubShim);
  window.addEventListener("load", installHubShim);
})();
