// Loaded (blocking, first script of every page; see book/_ext/vendor_assets.py) before the
// theme's deferred FontAwesome SVG+JS bundle (_static/scripts/fontawesome.js), which reads
// window.FontAwesomeConfig when it runs. With the default autoReplaceSvg: true, FontAwesome
// *replaces* every <i class="fa ..."> with an <svg>, including the icons inside the ipywidgets
// Play button; pressing Play then throws "TypeError: Cannot set properties of undefined
// (setting 'className')" and the animation never advances (tests/test_site.py catches this).
// "nest" puts the <svg> inside the <i>, so the element the widget updates stays in the page.
window.FontAwesomeConfig = Object.assign(window.FontAwesomeConfig || {}, {
  autoReplaceSvg: "nest",
});
