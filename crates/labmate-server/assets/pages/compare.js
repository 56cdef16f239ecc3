// Not built yet: the page says so.
export async function render(root) {
  root.textContent = "This page is not here yet.";
}
