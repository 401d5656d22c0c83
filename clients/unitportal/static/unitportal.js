// Progressive enhancement only: the logout hand-over page posts itself to the platform.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-autosubmit]");
  if (form) form.submit();
});
