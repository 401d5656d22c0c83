// Progressive enhancement only: every page works without this file.
// The logout hand-over page posts itself to the platform (the button does the same without JS).
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-autosubmit]");
  if (form) form.submit();
});
