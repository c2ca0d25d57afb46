// x402-escrow merchant console. The pages work without this script; it only stops a second
// click on a confirmation button from sending the form again (the server's idempotency key
// would make that second submit a replay anyway).
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.hasAttribute("data-once")) return;
  if (form.getAttribute("data-sent") === "1") { event.preventDefault(); return; }
  form.setAttribute("data-sent", "1");
  var buttons = form.querySelectorAll("button[type=submit]");
  // Disable after this event, so the button's own submission still goes out.
  setTimeout(function () { buttons.forEach(function (b) { b.disabled = true; }); }, 0);
});
