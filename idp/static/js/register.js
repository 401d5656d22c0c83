// Registration wizard, progressive enhancement only: every step works without this file.
// - live username check as the citizen types (GET /register/username-check, rate limited)
// - birth date and gender prefilled from an 18-digit document number (GB 11643)
// - "发送短信验证" without a page reload, with the 60-second countdown
(function () {
  "use strict";

  // -- live username check -------------------------------------------------------------------
  const username = document.querySelector("input[data-check-url]");
  if (username) {
    const status = document.querySelector("[data-username-status]");
    const initial = status ? status.textContent : "";
    const pattern = /^[A-Za-z][A-Za-z0-9_]{3,19}$/;
    let timer = null;
    let asked = "";
    const show = (text, kind) => {
      if (!status) return;
      status.textContent = text;
      status.className = kind === "error" ? "field-error" : kind === "ok" ? "field-ok" : "field-hint";
    };
    const check = async () => {
      const value = username.value.trim();
      if (!value) { show(initial, "hint"); return; }
      if (!pattern.test(value)) { show("用户名须为4–20位字母、数字或下划线，并以字母开头", "error"); return; }
      asked = value;
      try {
        const url = username.dataset.checkUrl + "?username=" + encodeURIComponent(value);
        const res = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (asked !== value) return; // the citizen typed on meanwhile
        if (res.status === 429) { show(initial, "hint"); return; }
        if (!res.ok) return;
        const data = await res.json();
        show(data.message, data.available ? "ok" : "error");
      } catch (e) { /* offline: the server checks on submit anyway */ }
    };
    username.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(check, 400); });
    username.addEventListener("blur", () => { clearTimeout(timer); check(); });
  }

  // -- birth date and gender from the document number -------------------------------------------
  const idNumber = document.getElementById("id_number");
  const idType = document.getElementById("id_type");
  const birthdate = document.getElementById("birthdate");
  const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const CHECK = "10X98765432";
  const EIGHTEEN = ["resident_id", "hmt_residence_permit", "foreign_permanent_id"];
  const parse = (raw) => {
    const n = raw.replace(/[\s-]/g, "").toUpperCase();
    if (!/^\d{17}[\dX]$/.test(n)) return null;
    let sum = 0;
    for (let i = 0; i < 17; i++) sum += Number(n[i]) * WEIGHTS[i];
    if (CHECK[sum % 11] !== n[17]) return null;
    const y = n.slice(6, 10), m = n.slice(10, 12), d = n.slice(12, 14);
    const date = new Date(Number(y), Number(m) - 1, Number(d));
    if (date.getFullYear() !== Number(y) || date.getMonth() !== Number(m) - 1 || date.getDate() !== Number(d)) return null;
    return { birthdate: `${y}-${m}-${d}`, gender: Number(n[16]) % 2 ? "M" : "F" };
  };
  const prefill = () => {
    if (!idNumber || !birthdate || (idType && !EIGHTEEN.includes(idType.value))) return;
    const facts = parse(idNumber.value);
    if (!facts) return;
    birthdate.value = facts.birthdate;
    const radio = document.querySelector(`input[name=gender][value=${facts.gender}]`);
    if (radio) radio.checked = true;
  };
  if (idNumber) {
    idNumber.addEventListener("input", prefill);
    idNumber.addEventListener("change", prefill);
    if (idType) idType.addEventListener("change", prefill);
  }

  // -- send the SMS code without reloading -------------------------------------------------------
  const smsForm = document.querySelector("form[data-sms-url]");
  if (smsForm) {
    const button = smsForm.querySelector("button[name=send_sms], input[name=send_sms]");
    const phone = smsForm.querySelector("input[name=phone]");
    const status = smsForm.querySelector("[data-sms-status]");
    const label = button ? (button.tagName === "INPUT" ? button.value : button.textContent) : "";
    const setLabel = (text) => { if (button.tagName === "INPUT") button.value = text; else button.textContent = text; };
    const show = (text, ok) => {
      if (!status) return;
      status.textContent = text;
      status.className = ok ? "field-ok" : "field-error";
    };
    const countdown = (seconds) => {
      button.disabled = true;
      let left = seconds;
      setLabel(`${left}秒后重新获取`);
      const tick = setInterval(() => {
        left -= 1;
        if (left <= 0) { clearInterval(tick); button.disabled = false; setLabel(label); return; }
        setLabel(`${left}秒后重新获取`);
      }, 1000);
    };
    if (button && phone) {
      button.addEventListener("click", async (event) => {
        event.preventDefault();
        const body = new FormData();
        body.append("phone", phone.value);
        // registration: the bank is asked what card it is before a code is spent (with consent)
        for (const name of ["bank_code", "card_number"]) {
          const input = smsForm.querySelector(`[name=${name}]`);
          if (input) body.append(name, input.value);
        }
        const consent = smsForm.querySelector("input[name=consent]");
        if (consent && consent.checked) body.append("consent", "y");
        const token = smsForm.querySelector("input[name=csrf_token]");
        if (token) body.append("csrf_token", token.value);
        button.disabled = true;
        try {
          const res = await fetch(smsForm.dataset.smsUrl, {
            method: "POST", body, credentials: "same-origin", headers: { Accept: "application/json" },
          });
          const data = await res.json().catch(() => ({}));
          if (res.ok && data.sent) {
            // an earlier refusal (the bank's red error) does not stay beside the green 已发送
            smsForm.closest("section")?.querySelectorAll(".alert-error, .field-error").forEach((e) => e.remove());
            show(data.message, true);
            countdown(data.resend_after || 60);
            const code = smsForm.querySelector("input[name=sms_code]");
            if (code) code.focus();
            return;
          }
          show(data.message || data.error_description || "短信发送失败，请稍后再试", false);
          if (data.retry_after) { countdown(data.retry_after); return; }
        } catch (e) {
          show("网络异常，请稍后再试", false);
        }
        button.disabled = false;
      });
    }
  }
})();
