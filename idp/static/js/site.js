// Progressive enhancement only: every page works without this file.

// 看不清？换一张 (the link, or a tap on the image): a new challenge in place, the form's typing kept.
// Without JavaScript the link reloads the page, which issues a new challenge too.
async function refreshCaptcha(field) {
  const img = field.querySelector("img.captcha-img[data-refresh]");
  if (!img) return false;
  try {
    const res = await fetch(img.dataset.refresh, { headers: { Accept: "application/json" } });
    if (!res.ok) return false;
    const data = await res.json();
    img.src = data.image;
    const form = field.closest("form");
    const hidden = form && form.querySelector("input[name=captcha_id]");
    if (hidden) hidden.value = data.captcha_id;
    const audio = field.querySelector("a.captcha-audio");
    if (audio && data.audio) audio.href = data.audio;
    const input = field.querySelector("input[name=captcha]");
    if (input) { input.value = ""; input.focus(); }
    return true;
  } catch (e) {
    return false;
  }
}

let playing = null;
document.addEventListener("click", async (event) => {
  const field = event.target.closest(".field.captcha");
  if (!field) return;
  if (event.target.closest("img.captcha-img, a.captcha-refresh")) {
    event.preventDefault();
    if (!(await refreshCaptcha(field)) && event.target.closest("a.captcha-refresh")) {
      window.location.reload();  // the JSON route failed: fall back to what the link does
    }
    return;
  }
  const audioLink = event.target.closest("a.captcha-audio");
  if (audioLink) {
    // 语音验证码: play here instead of leaving the page
    event.preventDefault();
    if (playing) playing.pause();
    playing = new Audio(audioLink.href);
    playing.play().catch(() => { window.location.href = audioLink.href; });
  }
});

// 找回用户名's 用户类型: each type has its own form; choosing one loads it (without JavaScript the
// choice takes effect on 下一步).
document.addEventListener("change", (event) => {
  const input = event.target.closest("input[type=radio][data-switch]");
  if (input && input.checked) window.location.href = input.dataset.switch;
});
