// Replies, as the conversation shows them: the quote at the top of a reply
// (the author and the start of the message it answers, or that it was
// deleted), a button that takes the reader to that message; and keeping
// quotes true while the conversation is open, as their messages are
// edited and deleted (history's quotes are the server's, already current).
// Writing a reply ("Reply", and "Replying to" above the box) is composer.js's.

import {state} from './state.js';
import {element} from './dom.js';
import {findMessage, redrawMessage, showMessage, openAt} from './messages.js';
import {authorElement, spokenName} from './names.js';
import {cancelReply} from './composer.js';

const EXCERPT = 100;  // code points, as the server's excerpt

// The start of a message's words, as the server quotes them (the page's
// style sheet ends a long one with an ellipsis).
export function excerptOf(content) {
  return Array.from(content || '').slice(0, EXCERPT).join('');
}

// The quote drawn above a reply's words. It is a button (click, Enter or
// Space), named by who wrote the message it answers and its start.
export function quoteElement(replyTo) {
  if (replyTo.deleted) {
    const gone = element('p', 'Reply to a deleted message');
    gone.className = 'quote deleted';
    return gone;
  }
  const excerpt = element('span', replyTo.excerpt || '');
  excerpt.className = 'excerpt';
  excerpt.dir = 'auto';
  const quote = element('button', authorElement(replyTo.user_id, replyTo.username), excerpt);
  quote.type = 'button';
  quote.className = 'quote';
  quote.dataset.control = 'quote';
  quote.setAttribute('aria-label', `In reply to ${spokenName(replyTo.user_id, replyTo.username)}: ${replyTo.excerpt || ''}`);
  quote.title = 'Show the message this answers';
  return quote;
}

// The quote of message `id` was chosen: its parent, on screen if it is
// there, else the room's history back to it.
export function showParent(id) {
  const parent = findMessage(id)?.reply_to;
  if (!parent || parent.deleted) return;
  if (findMessage(parent.id)) showMessage(parent.id);
  else openAt(state.joinedRoomId, parent.id);
}

// message_updated (or our own edit) of a message that replies quote: their quotes follow it.
export function followEdit(data) {
  for (const item of replies(data.id)) {
    item.reply_to = {...item.reply_to, excerpt: excerptOf(data.content)};
    redrawMessage(item.id);
  }
}

// A message deleted: the replies to it say so, and so does ours if we were writing one.
export function parentGone(id) {
  for (const item of replies(id)) {
    item.reply_to = {id, deleted: true};
    redrawMessage(item.id);
  }
  if (state.replyingTo === id) cancelReply();
}

function replies(id) {
  return state.items.filter((item) => item.kind === 'message' && item.reply_to?.id === id && !item.reply_to.deleted);
}
