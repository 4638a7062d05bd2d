// Forms marked data-submit-once: the submit button is disabled once the form is sent, so a
// double click sends it once (a courtesy: the form's one-time token is what records it once).
(function () {
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-submit-once")) return;
    // After this event, so the button's own submission is not held back.
    setTimeout(() => {
      form.querySelectorAll('button[type="submit"]').forEach((button) => {
        button.disabled = true;
      });
    }, 0);
  });
  // A page shown again from the back/forward cache gets its buttons back.
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-submit-once] button[type=\"submit\"]").forEach((button) => {
      button.disabled = false;
    });
  });
})();
