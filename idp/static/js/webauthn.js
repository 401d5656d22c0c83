// WebAuthn ceremonies for /mfa: fetch the options, call the browser, post the answer back.
(function () {
  "use strict";
  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var raw = atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }
  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer), s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function csrf() {
    var input = document.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf(), "Accept": "application/json"},
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) throw new Error(data.error || "验证失败，请重试");
        return data;
      });
    });
  }
  function descriptors(list) {
    return (list || []).map(function (c) { return {type: c.type, id: toBytes(c.id), transports: c.transports}; });
  }
  function register(box) {
    return post(box.dataset.optionsUrl).then(function (o) {
      o.challenge = toBytes(o.challenge);
      o.user.id = toBytes(o.user.id);
      o.excludeCredentials = descriptors(o.excludeCredentials);
      return navigator.credentials.create({publicKey: o});
    }).then(function (cred) {
      var label = box.querySelector("#passkey-label");
      return post(box.dataset.finishUrl, {label: label ? label.value : "", credential: {
        id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
        response: {
          clientDataJSON: toB64url(cred.response.clientDataJSON),
          attestationObject: toB64url(cred.response.attestationObject),
          transports: cred.response.getTransports ? cred.response.getTransports() : []
        },
        clientExtensionResults: cred.getClientExtensionResults(),
        authenticatorAttachment: cred.authenticatorAttachment
      }});
    });
  }
  function authenticate(box) {
    return post(box.dataset.optionsUrl).then(function (o) {
      o.challenge = toBytes(o.challenge);
      o.allowCredentials = descriptors(o.allowCredentials);
      return navigator.credentials.get({publicKey: o});
    }).then(function (cred) {
      return post(box.dataset.finishUrl, {credential: {
        id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
        response: {
          clientDataJSON: toB64url(cred.response.clientDataJSON),
          authenticatorData: toB64url(cred.response.authenticatorData),
          signature: toB64url(cred.response.signature),
          userHandle: cred.response.userHandle ? toB64url(cred.response.userHandle) : null
        },
        clientExtensionResults: cred.getClientExtensionResults(),
        authenticatorAttachment: cred.authenticatorAttachment
      }});
    });
  }
  document.querySelectorAll("[data-webauthn]").forEach(function (box) {
    var button = box.querySelector("button"), message = box.querySelector(".field-error");
    if (!window.PublicKeyCredential) { button.disabled = true; return; }
    button.addEventListener("click", function () {
      button.disabled = true;
      message.hidden = true;
      (box.dataset.webauthn === "register" ? register(box) : authenticate(box)).then(function (data) {
        window.location.assign(data.next);
      }).catch(function (err) {
        message.textContent = (err && err.name === "NotAllowedError") ? "操作已取消或超时，请重试" : err.message;
        message.hidden = false;
        button.disabled = false;
      });
    });
  });
})();
