// Loaded (blocking, first) before the theme's deferred FontAwesome SVG+JS bundle, which reads
// window.FontAwesomeConfig when it runs. With the default autoReplaceSvg: true, FontAwesome
// *replaces* every <i class="fa ..."> with an <svg>, including the icon inside the ipywidgets
// Play button; the widget keeps a reference to the removed <i> and Play throws when it toggles
// the icon. "nest" puts the <svg> inside the <i>, so the widget's element stays in the page.
window.FontAwesomeConfig = Object.assign(window.FontAwesomeConfig || {}, {
  autoReplaceSvg: "nest",
});
