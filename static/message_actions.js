// A message's action bar: the row of small buttons that shows over a
// message while the pointer is on it or anything in it has the keyboard's
// focus (messages.css): Reply, React, Pin (or Unpin), Edit, Delete and
// Report, each only where our rights here allow it. Each is an icon, its
// name in words for a screen reader and in its tooltip. What a button does is
// its own module's (composer.js replies, reactions.js reacts, pins.js
// pins, editing.js edits and deletes, reports.js reports), reached through
// messages.js's one click listener; while "Delete this message?" waits for
// an answer, editing.js's question takes the bar's place.

import {state, moderating, pinning} from './state.js';
import {$, controlButton, element} from './dom.js';
import {deleteQuestion} from './editing.js';

// Each icon's strokes, on a 24 by 24 grid.
const ICONS = {
  reply: ['M9 17l-5-5 5-5', 'M4 12h11a5 5 0 0 1 5 5v2'],
  react: ['M21 12a9 9 0 1 1-18 0 9 9 0 0 1 18 0z', 'M8.5 14.5a4.5 4.5 0 0 0 7 0', 'M9 9.5h.01M15 9.5h.01'],
  pin: ['M9 4h6l-1 6 3 3v2H7v-2l3-3z', 'M12 15v6'],
  edit: ['M4 20h4L19 9l-4-4L4 16z', 'M14 6l4 4'],
  delete: ['M4 7h16', 'M10 7V4h4v3', 'M6 7l1 13h10l1-13'],
  report: ['M5 21V4', 'M5 4h11l-2 4 2 4H5'],
};

export function actionsFor(item) {
  if (item.id == null) return null;  // never saved: nothing to act on
  if (state.confirmingDelete === item.id) return deleteQuestion(item);
  const mine = item.user_id === state.user.id;
  const buttons = [];
  if (mayWrite()) buttons.push(action('Reply', 'reply'), reactButton(state.picking === item.id));
  if (pinning()) buttons.push(action(item.pinned ? 'Unpin' : 'Pin', 'pin'));
  if (mine) buttons.push(action('Edit', 'edit'));
  if (mine || moderating()) buttons.push(action('Delete', 'delete'));
  if (!mine) buttons.push(action('Report', 'report'));
  const bar = element('div', ...buttons);
  bar.className = 'message-actions' + (state.picking === item.id ? ' open' : '');
  bar.setAttribute('role', 'group');
  bar.setAttribute('aria-label', 'Message actions');
  return bar;
}

// Replying and reacting are posting: not where posting.js has put its
// note in the composer's place (only moderators post here, or we are muted).
function mayWrite() {
  return !$('send-form').hidden;
}

// "React" opens the picker (reactions.js), a small dialog.
function reactButton(picking) {
  const button = action('React', 'react');
  button.setAttribute('aria-haspopup', 'dialog');
  button.setAttribute('aria-expanded', String(picking));
  return button;
}

// An icon, with its name as words that only a screen reader (and the tooltip) gives.
function action(name, control) {
  const button = controlButton('', control);
  const words = element('span', name);
  words.className = 'unseen';
  button.append(icon(control), words);
  button.title = name;
  return button;
}

// One of ICONS as an SVG drawn with the text colour: a picture only, the button has the name.
export function icon(name) {
  const svgNS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNS, 'svg');
  for (const [name, value] of Object.entries({viewBox: '0 0 24 24', width: '18', height: '18', fill: 'none',
    stroke: 'currentColor', 'stroke-width': '2', 'stroke-linecap': 'round', 'stroke-linejoin': 'round',
    'aria-hidden': 'true', focusable: 'false'})) svg.setAttribute(name, value);
  for (const stroke of ICONS[name]) {
    const path = document.createElementNS(svgNS, 'path');
    path.setAttribute('d', stroke);
    svg.append(path);
  }
  return svg;
}
