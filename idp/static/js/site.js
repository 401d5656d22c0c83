// Progressive enhancement only: every page works without this file.
document.addEventListener("click", async (event) => {
  const img = event.target.closest("img.captcha-img[data-refresh]");
  if (!img) return;
  const form = img.closest("form");
  try {
    const res = await fetch(img.dataset.refresh, { headers: { Accept: "application/json" } });
    if (!res.ok) return;
    const data = await res.json();
    img.src = data.image;
    const hidden = form && form.querySelector("input[name=captcha_id]");
    if (hidden) hidden.value = data.captcha_id;
  } catch (e) { /* keep the old image */ }
});
