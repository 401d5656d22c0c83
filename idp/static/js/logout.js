// After a logout, go on to the relying system once the front-channel logout pages in the hidden
// iframes have loaded (the window's load event waits for them), or after the wait the platform
// allows them at most.  Without JavaScript the 继续 link does the same.
(function () {
  const box = document.getElementById("logout-continue");
  if (!box) return;
  let gone = false;
  const go = () => {
    if (gone) return;
    gone = true;
    window.location.replace(box.dataset.continue);
  };
  if (document.readyState === "complete") go();
  else window.addEventListener("load", go);
  window.setTimeout(go, Number(box.dataset.waitMs) || 5000);
})();
