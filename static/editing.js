// Editing and deleting messages: the buttons a message shows ("Edit" and
// "Delete" on one's own, "Delete" on all for moderators, "Report" on
// everyone else's), the editor that takes its text's place, and the
// "Delete this message?" question asked in the page. Both go over REST
// (PATCH and DELETE /messages/{id}) rather than the socket's edit_message
// and delete_message: the answer belongs to the request, so an error ("You
// cannot change this message") is shown beside the editor it is about.
// Everyone in the room, this page included, also hears message_updated or
// message_deleted, which messages.js applies; applying either twice is
// harmless. Where the message is drawn, and its buttons' one click
// listener, are messages.js's; "Report" goes to reports.js.

import {state, moderating} from './state.js';
import {$, controlButton, showError} from './dom.js';
import {api} from './api.js';
import {findMessage, redrawMessage, applyUpdate, removeMessage} from './messages.js';

// "Edit" on one's own messages; "Delete" on those, and on all for moderators;
// "Report" on everyone else's.
export function actionsFor(item) {
  if (item.id == null) return null;  // never saved: nothing to change
  if (state.confirmingDelete === item.id) return deleteQuestion(item);
  const mine = item.user_id === state.user.id;
  const buttons = [];
  if (mine) buttons.push(controlButton('Edit', 'edit'));
  if (mine || moderating()) buttons.push(controlButton('Delete', 'delete'));
  if (!mine) buttons.push(controlButton('Report', 'report'));
  const actions = document.createElement('div');
  actions.className = 'actions';
  actions.append(...buttons);
  return actions;
}

// Asked in the page (window.confirm would stop every script, the socket's included).
function deleteQuestion(item) {
  const question = document.createElement('span');
  question.id = `delete-question-${item.id}`;
  question.textContent = 'Delete this message?';
  const actions = document.createElement('div');
  actions.className = 'actions asking';
  actions.setAttribute('role', 'group');
  actions.setAttribute('aria-labelledby', question.id);
  actions.append(question, controlButton('Confirm delete', 'confirm-delete', 'danger'),
                 controlButton('Cancel', 'cancel-delete'));
  return actions;
}

export function editorFor() {
  const input = document.createElement('textarea');
  input.dataset.control = 'editor';
  input.setAttribute('aria-label', 'Edit message');
  input.maxLength = 4000;
  input.rows = 3;
  input.dir = 'auto';
  input.value = state.editing.draft;
  const error = document.createElement('span');
  error.className = 'edit-error';
  error.setAttribute('role', 'alert');
  error.textContent = state.editing.error;
  error.hidden = !state.editing.error;
  const save = controlButton('Save', 'save');
  save.type = 'submit';
  const buttons = document.createElement('div');
  buttons.className = 'buttons';
  buttons.append(save, controlButton('Cancel', 'cancel-edit'));
  const form = document.createElement('form');
  form.className = 'editor';
  form.append(input, error, buttons);
  return form;
}

function focusControl(id, control) {
  const target = $('messages').querySelector(`li[data-id="${id}"] [data-control="${control}"]`);
  if (target) target.focus();
  return target;
}

export function startEditing(id) {
  const item = findMessage(id);
  if (!item) return;
  const asked = state.confirmingDelete;
  state.editing = {id, draft: item.content, error: ''};
  state.confirmingDelete = null;
  if (asked != null) redrawMessage(asked);
  redrawMessage(id);
  const input = focusControl(id, 'editor');
  input.setSelectionRange(input.value.length, input.value.length);
}

export function stopEditing() {
  const {id} = state.editing;
  state.editing = null;
  redrawMessage(id);
  focusControl(id, 'edit');
}

async function saveEdit() {
  const {id, draft} = state.editing;
  if (draft === findMessage(id)?.content) return stopEditing();
  try {
    const message = await api('PATCH', `/messages/${id}`, {content: draft});
    const wasFocused = document.activeElement.closest(`#messages li[data-id="${id}"]`);
    if (state.editing && state.editing.id === id) state.editing = null;
    applyUpdate(message);
    if (wasFocused) focusControl(id, 'edit');
  } catch (error) {
    showEditError(id, error.message);
  }
}

function showEditError(id, text) {
  if (!state.editing || state.editing.id !== id) return showError(text);
  state.editing.error = text;
  const error = $('messages').querySelector(`li[data-id="${id}"] .edit-error`);
  error.textContent = text;
  error.hidden = false;
}

export function askToDelete(id) {
  const asked = state.confirmingDelete;
  state.confirmingDelete = id;
  if (asked != null) redrawMessage(asked);
  redrawMessage(id);
  focusControl(id, 'confirm-delete');
}

export function cancelDelete() {
  const id = state.confirmingDelete;
  state.confirmingDelete = null;
  redrawMessage(id);
  focusControl(id, 'delete');
}

export async function deleteMessage(id) {
  try {
    removeMessage(await api('DELETE', `/messages/${id}`));
  } catch (error) {
    showError(error.message);
    if (state.confirmingDelete === id) cancelDelete();
  }
}

// -- wiring: the editor's form and keys, inside the message list ------------

$('messages').addEventListener('submit', (event) => {
  event.preventDefault();  // the editor's form: "Save"
  saveEdit();
});
$('messages').addEventListener('input', (event) => {
  if (event.target.dataset.control === 'editor') state.editing.draft = event.target.value;
});
$('messages').addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && state.editing) stopEditing();
  else if (event.key === 'Escape' && state.confirmingDelete != null) cancelDelete();
  else if (event.target.dataset.control === 'editor' && event.key === 'Enter' && !event.shiftKey
           && !event.isComposing) {
    event.preventDefault();  // as in the composer: Enter saves, Shift+Enter is a new line
    saveEdit();
  }
});
