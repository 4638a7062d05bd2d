// Customer 360: a panel another domain failed to answer says so, instead of "Loading…" forever.
(function () {
  document.addEventListener("htmx:responseError", (event) => {
    const panel = event.detail.elt && event.detail.elt.closest("section.panel");
    if (!panel) return;
    const body = panel.querySelector(".panel-body");
    if (!body) return;
    const status = event.detail.xhr ? event.detail.xhr.status : "";
    const note = document.createElement("p");
    note.className = "error";
    note.dataset.panelError = status;
    note.textContent = `This part could not be loaded (${status}). Reload the page to try again.`;
    body.replaceChildren(note);
  });
  document.addEventListener("htmx:sendError", (event) => {
    const panel = event.detail.elt && event.detail.elt.closest("section.panel");
    const body = panel && panel.querySelector(".panel-body");
    if (!body) return;
    const note = document.createElement("p");
    note.className = "error";
    note.textContent = "This part could not be loaded: Rapport did not answer. Reload the page to try again.";
    body.replaceChildren(note);
  });
})();
