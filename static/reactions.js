// Reactions: the small counted chips under a message (each a toggle
// button, pressed when one of them is ours, named by the emoji, the count
// and who reacted: "👍 2: Ana K., Ben"), and the picker of common emoji
// that "React" opens beside the message's actions (a small non-modal
// dialog: arrow keys move between its emoji, Escape closes it and returns
// to "React"). Reacting goes over REST (POST and DELETE
// /messages/{id}/reactions), like editing, so that a refusal (muted, say)
// belongs to the click that caused it; everyone in the room, this page
// included, then hears the `reactions` frame, which is what redraws the chips.

import {state} from './state.js';
import {$, controlButton, element, showError} from './dom.js';
import {api} from './api.js';
import {findMessage, redrawMessage} from './messages.js';
import {displayName} from './names.js';

// The picker's emoji, and the words a mouse user sees on hover.
const COMMON = [
  ['👍', 'Thumbs up'], ['❤️', 'Heart'], ['😂', 'Laughing'], ['🎉', 'Celebrate'],
  ['😮', 'Surprised'], ['😢', 'Sad'], ['🙏', 'Thank you'], ['✅', 'Done'],
];
const NAMED = 10;  // a chip's name lists this many people, then "and N more"

// The chips under a message, in the order each emoji was first used.
export function reactionsElement(item) {
  const chips = element('div', ...item.reactions.map(chip));
  chips.className = 'reactions';
  chips.setAttribute('role', 'group');
  chips.setAttribute('aria-label', 'Reactions');
  return chips;
}

function chip(reaction) {
  const button = controlButton('', 'reaction');
  button.dataset.emoji = reaction.emoji;
  const emoji = element('span', reaction.emoji);
  emoji.className = 'emoji';
  button.append(emoji, element('span', String(reaction.count)));
  button.setAttribute('aria-pressed', String(reaction.user_ids.includes(state.user.id)));
  const name = `${reaction.emoji} ${reaction.count}: ${whoReacted(reaction.user_ids)}`;
  button.setAttribute('aria-label', name);
  button.title = name;
  return button;
}

function whoReacted(userIds) {
  const names = userIds.slice(0, NAMED).map((userId) => displayName(userId));
  const more = userIds.length - names.length;
  return names.join(', ') + (more > 0 ? ` and ${more} more` : '');
}

// The picker, drawn inside the message whose "React" opened it (messages.js asks for it).
export function pickerElement() {
  const buttons = COMMON.map(([emoji, words]) => {
    const button = controlButton(emoji, 'pick');
    button.dataset.emoji = emoji;
    button.title = words;
    return button;
  });
  const picker = element('div', ...buttons);
  picker.className = 'picker';
  picker.setAttribute('role', 'dialog');
  picker.setAttribute('aria-label', 'Choose a reaction');
  return picker;
}

// "React": opens the picker on this message, its first emoji focused; pressed again, closes it.
export function togglePicker(id) {
  if (state.picking === id) return closePicker();
  const before = state.picking;
  state.picking = id;
  if (before != null) redrawMessage(before);
  redrawMessage(id);
  messageControl(id, '.picker button')?.focus();
}

// Back to "React" when the keyboard was in the picker.
export function closePicker() {
  const id = state.picking;
  if (id == null) return;
  const hadFocus = Boolean(document.activeElement?.closest('.picker'));
  state.picking = null;
  redrawMessage(id);
  if (hadFocus) messageControl(id, '[data-control="react"]')?.focus();
}

function messageControl(id, selector) {
  return $('messages').querySelector(`li[data-id="${id}"] ${selector}`);
}

// An emoji chosen in the picker: ours on the message (choosing one we
// gave already changes nothing), and the picker closes.
export function pickReaction(id, button) {
  closePicker();
  react(id, button.dataset.emoji, true);
}

// A chip: pressed, our reaction is taken back; else we add ours.
export function toggleReaction(id, button) {
  const reaction = findMessage(id)?.reactions?.find((r) => r.emoji === button.dataset.emoji);
  react(id, button.dataset.emoji, !reaction?.user_ids.includes(state.user.id));
}

async function react(id, emoji, adding) {
  try {
    if (adding) await api('POST', `/messages/${id}/reactions`, {emoji});
    else await api('DELETE', `/messages/${id}/reactions/${encodeURIComponent(emoji)}`);
  } catch (error) {
    showError(error.message);
  }
}

// The `reactions` frame: a message's reactions as they are now.
export function applyReactions(data) {
  const item = findMessage(data.id);
  if (!item) return;
  item.reactions = data.reactions;
  redrawMessage(data.id);
}

// Arrow keys move along the picker (Home and End to its ends); Escape closes it.
function onPickerKey(event) {
  const buttons = [...event.currentTarget.querySelectorAll('.picker button')];
  const at = buttons.indexOf(document.activeElement);
  if (at < 0) return;
  const moves = {ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1,
                 Home: 0, End: buttons.length - 1};
  if (event.key === 'Escape') {
    event.preventDefault();
    closePicker();
  } else if (Object.hasOwn(moves, event.key)) {
    event.preventDefault();
    buttons[(moves[event.key] + buttons.length) % buttons.length].focus();
  }
}

// The picker closes once the focus has gone elsewhere than it or its "React".
// Looked at a moment later: redrawing the message moves the focus to its
// new picker, and a click on "React" toggles it itself.
function onFocusLeaving() {
  if (state.picking == null) return;
  setTimeout(() => {
    const active = document.activeElement;
    const inside = active?.closest('.picker')
      || (active?.dataset.control === 'react' && active.closest('li')?.dataset.id === String(state.picking));
    if (!inside) closePicker();
  });
}

// -- wiring -----------------------------------------------------------------

$('messages').addEventListener('keydown', (event) => {
  if (event.target.closest('.picker')) onPickerKey(event);
});
$('messages').addEventListener('focusout', onFocusLeaving);
document.addEventListener('click', (event) => {
  if (state.picking != null && !event.target.closest('.picker, [data-control="react"]')) closePicker();
});
