// The portal's live parts, pushed by its event stream (/portal/events/, portal/events.py):
// a `qr` event replaces the QR image; `status` and `activity` events make the page fetch the
// fragment of itself that changed (elements with data-refresh-on / data-refresh-url).
// Without a stream (too many open, a proxy in the way) the fragments are polled instead.
(function () {
  "use strict";
  // A form that asks first (data-confirm: "Unlink this phone"), also in fragments fetched later.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches && form.matches("form[data-confirm]") && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });
  var root = document.querySelector("[data-portal-events]");
  if (!root) return;

  function refresh(node) {
    fetch(node.getAttribute("data-refresh-url"), {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { node.innerHTML = html; })
      .catch(function () {});
  }

  function refreshAll(event) {
    document.querySelectorAll('[data-refresh-on="' + event + '"]').forEach(refresh);
  }

  function showQr(data) {
    var box = document.getElementById("portal-qr");
    if (!box) return;
    box.setAttribute("data-qr-state", data.state);
    var shown = box.querySelector(".qr-box"), none = box.querySelector(".qr-none");
    if (data.qr) {
      shown.querySelector("img").src = data.qr;
      shown.hidden = false; none.hidden = true;
    } else {
      shown.hidden = true; none.hidden = false;
      shown.querySelector("img").removeAttribute("src");
    }
  }

  var polling = null;
  function poll() {
    if (polling) return;
    polling = setInterval(function () { refreshAll("status"); refreshAll("activity"); }, 5000);
  }

  function connect() {
    if (!window.EventSource) { poll(); return; }
    var source = new EventSource(root.getAttribute("data-portal-events"));
    source.addEventListener("qr", function (e) { showQr(JSON.parse(e.data)); });
    source.addEventListener("status", function () { refreshAll("status"); });
    source.addEventListener("activity", function () { refreshAll("activity"); });
    source.addEventListener("gone", function () { source.close(); window.location.reload(); });
    source.addEventListener("open", function () {
      if (polling) { clearInterval(polling); polling = null; }
    });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {  // refused (e.g. 503): poll, try again later
        poll();
        setTimeout(connect, 15000);
      }
    });
  }
  connect();
})();
