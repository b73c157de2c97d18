// The receipt's print button (the page's CSP allows no inline script).
document.getElementById("print")?.addEventListener("click", () => window.print());
