// The top bar's "Menu": on a narrow screen (a phone, a small window) the
// bar keeps the connection's status and your name whole, and the rest
// (Profile, Change password, Admin, Reports, Log out) waits behind "Menu",
// a disclosure button that shows it as a panel under the bar. On a wide
// screen chat.css hides the button and lays the same buttons out in the
// bar, so there is one set of buttons, whatever the width. What each
// button does is its own module's (session.js, profile.js, admin.js,
// reports.js); this module only opens and closes the panel: Escape or a
// click elsewhere closes it, and choosing a button in it closes it too.

import {$} from './dom.js';

export function showMenuButton(shown) {
  $('menu-button').hidden = !shown;
  if (!shown) setMenuOpen(false);
}

function setMenuOpen(open) {
  $('top-bar').classList.toggle('menu-open', open);
  $('menu-button').setAttribute('aria-expanded', String(open));
}

function menuOpen() {
  return $('menu-button').getAttribute('aria-expanded') === 'true';
}

// A top bar button the keyboard should go back to (a form under the bar
// closed with Escape, say): the button itself where it shows, else "Menu".
export function focusTopBarButton(id) {
  const button = $(id);
  if (button.checkVisibility()) button.focus();
  else $('menu-button').focus();
}

// -- wiring -----------------------------------------------------------------

$('menu-button').addEventListener('click', () => {
  setMenuOpen(!menuOpen());
  if (menuOpen()) $('top-actions').querySelector('button:not([hidden])')?.focus();
});
$('top-actions').addEventListener('click', (event) => {
  if (event.target.closest('button')) setMenuOpen(false);
});
$('top-actions').addEventListener('keydown', (event) => {
  if (event.key !== 'Escape' || !menuOpen()) return;
  setMenuOpen(false);
  $('menu-button').focus();
});
document.addEventListener('pointerdown', (event) => {
  if (menuOpen() && !event.target.closest?.('#top-actions, #menu-button')) setMenuOpen(false);
});
