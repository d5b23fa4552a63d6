// Records, for a browser-driven test, whether every image decoded (a harmless attribute for readers).
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  imgs.forEach(function (i) { i.setAttribute('data-loaded', i.naturalWidth > 0 ? 'yes' : 'no'); });
  document.body.setAttribute('data-images-total', String(imgs.length));
  document.body.setAttribute('data-images-loaded', String(ok.length));
});
