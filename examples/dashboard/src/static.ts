/**
 * The page's stylesheet and its little JavaScript, served as files of their own so the
 * Content-Security-Policy can forbid every inline script and style. The pages work without
 * the script (plain forms and links); it adds the copy button, focus on the once-shown
 * secret, the in-page revoke dialog, and takes the secret's page out of the history.
 */

export const STYLES = `
:root { color-scheme: light; font-family: system-ui, sans-serif; color: #1b1f24; background: #f6f7f9; }
body { margin: 0; }
header { background: #14213d; color: #fff; padding: 0.75rem 1.5rem; display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; }
header a { color: inherit; }
header .brand { font-weight: 700; font-size: 1.1rem; }
header .who { margin-left: auto; font-size: 0.9rem; }
.stand-in { background: #fff3cd; color: #5c4400; border-bottom: 1px solid #e0c36a; padding: 0.5rem 1.5rem; font-size: 0.9rem; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.6rem; margin: 1rem 0; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 0.5rem; }
section.card, dialog { background: #fff; border: 1px solid #d7dbe0; border-radius: 8px; padding: 1rem 1.25rem; }
dialog { max-width: 32rem; }
dialog::backdrop { background: rgba(20, 33, 61, 0.45); }
form.create { display: flex; gap: 1rem; align-items: flex-start; flex-wrap: wrap; }
form.create > button { margin-top: 1.6rem; }
.field { display: flex; flex-direction: column; gap: 0.25rem; }
.field .hint { font-size: 0.8rem; color: #555; max-width: 22rem; }
input, select { font: inherit; padding: 0.4rem 0.5rem; border: 1px solid #9aa3ad; border-radius: 4px; }
input.secret { font-family: ui-monospace, monospace; width: min(44rem, 100%); }
button, .button { font: inherit; padding: 0.45rem 0.9rem; border-radius: 4px; border: 1px solid #14213d; background: #14213d; color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
button.secondary, .button.secondary { background: #fff; color: #14213d; }
button.danger, .button.danger { background: #b3261e; border-color: #b3261e; color: #fff; }
.button.small, button.small { padding: 0.2rem 0.6rem; font-size: 0.85rem; }
:focus-visible { outline: 3px solid #f4a300; outline-offset: 2px; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid #d7dbe0; }
caption { text-align: left; padding: 0.5rem 0; color: #444; }
th, td { text-align: left; padding: 0.5rem 0.6rem; border-bottom: 1px solid #e6e8eb; font-size: 0.92rem; vertical-align: middle; }
th { background: #eef0f3; }
td time { white-space: nowrap; }
code { font-family: ui-monospace, monospace; font-size: 0.85rem; }
.status { padding: 0.1rem 0.5rem; border-radius: 999px; font-size: 0.8rem; font-weight: 600; }
.status.active { background: #dcf5e3; color: #17602d; }
.status.revoked { background: #fde2e0; color: #8c1d18; }
.status.expired { background: #eceff2; color: #444; }
.actions { display: flex; gap: 0.5rem; }
.notice { background: #e7f1ff; border: 1px solid #9cc2f7; padding: 0.6rem 0.9rem; border-radius: 6px; }
.error { background: #fde2e0; border: 1px solid #e29a94; padding: 0.6rem 0.9rem; border-radius: 6px; }
.warning { background: #fff3cd; border: 1px solid #e0c36a; padding: 0.6rem 0.9rem; border-radius: 6px; font-weight: 600; }
.pager { display: flex; gap: 1rem; margin-top: 0.75rem; }
.empty { color: #555; }
`;

export const SCRIPT = `"use strict";
// Copy buttons: shown only when this script runs; the secret field stays selectable without it.
for (const button of document.querySelectorAll("[data-copy-target]")) {
  const field = document.getElementById(button.dataset.copyTarget);
  const status = document.getElementById(button.dataset.copyStatus);
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(field.value);
      status.textContent = "Copied to the clipboard.";
    } catch {
      field.focus();
      field.select();
      status.textContent = "Could not copy automatically: the secret is selected, press Ctrl+C (or Cmd+C).";
    }
  });
}

// The once-shown secret: focus moves to it, and the POST that showed it leaves the history, so a
// reload or Back shows the list (which never holds a secret), not a re-submitted form.
const secretPage = document.querySelector("[data-secret-page]");
if (secretPage !== null) {
  document.getElementById("secret-title").focus();
  history.replaceState(null, "", secretPage.dataset.afterUrl);
}

// Revoke: an in-page confirmation dialog instead of the confirmation page the links lead to.
const dialog = document.getElementById("revoke-dialog");
if (dialog !== null && typeof dialog.showModal === "function") {
  let opener = null;
  const form = dialog.querySelector("form");
  const cancel = dialog.querySelector("[data-cancel]");
  for (const link of document.querySelectorAll("[data-revoke-key]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      opener = link;
      form.action = link.getAttribute("href");
      dialog.querySelector("[data-key-name]").textContent = link.dataset.keyName;
      dialog.querySelector("[data-key-id]").textContent = link.dataset.revokeKey;
      dialog.showModal();
      cancel.focus();
    });
  }
  cancel.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => opener?.focus());
}
`;
