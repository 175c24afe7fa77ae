"use strict";
// The tenant admin page: refresh the live block (QR, session, worker) in place, so a rotating
// QR code shows up without a reload; and ask before a lifecycle button that needs confirming.
(function () {
  const block = document.getElementById("tenant-live");
  if (block) {
    const every = Number(block.dataset.intervalMs) || 3000;
    let busy = false;
    const refresh = async function () {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const response = await fetch(block.dataset.url, {
          credentials: "same-origin", cache: "no-store", headers: {"X-Requested-With": "XMLHttpRequest"},
        });
        // A redirect means the login page: the session ended, keep what is shown.
        const fresh = response.ok && !response.redirected;
        if (fresh) block.innerHTML = await response.text();
        block.classList.toggle("fhq-offline", !fresh);
      } catch (error) {
        block.classList.add("fhq-offline");
      } finally {
        busy = false;
      }
    };
    window.setInterval(refresh, every);
  }
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
})();
