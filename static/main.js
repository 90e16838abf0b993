// SwiftChat's browser client starts here; index.html loads only this
// module. The page uses only the public API, like any other client: REST
// for accounts, rooms, members and history (api.js), the WebSocket for live
// chat (socket.js). Its state is in state.js; everything a user wrote is put
// on the page with text nodes, never as HTML (dom.js, format.js); and
// nothing is inline script or style, since the server sends a
// Content-Security-Policy that forbids both. This module brings in the
// parts of the screen, each of which wires its own controls as it loads,
// then signs in: with a token an embedding program put in the URL's
// fragment, or with the one this tab kept; else the login form waits.
//
// The modules import one another in cycles (the socket hands frames to the
// parts of the screen, which send on the socket). That is safe because a
// module's top level only declares functions and tables and wires its
// listeners, calling nothing of another module but dom.js's `$` (which
// imports nothing, so it is always ready); the first calls across modules
// come from the code below, once every module has loaded.

import {state} from './state.js';
import {$, showError} from './dom.js';
import {tokenFromFragment, signInWithToken, showChat} from './session.js';
// The other parts of the screen, top to bottom and left to right.
import './topbar.js';
import './profile.js';
import './search.js';
import './reading.js';
import './rooms.js';
import './room.js';
import './messages.js';
import './editing.js';
import './composer.js';
import './uploads.js';
import './members.js';
import './member_menu.js';
import './moderation.js';
import './room_settings.js';
import './posting.js';
import './reports.js';
import './admin.js';
import './import_accounts.js';

// test_browser.py looks into the page through these names, as a reader may
// at the browser's console; a module's names are its own, so they are put
// on window on purpose. The page itself never reads them from there.
Object.assign(window, {state, $, showError});

const embeddedToken = tokenFromFragment();
if (embeddedToken) signInWithToken(embeddedToken);
else if (state.token && state.user) showChat();
// A host that hands an open page a new token changes only the fragment, which loads nothing.
window.addEventListener('hashchange', () => {
  if (new URLSearchParams(location.hash.slice(1)).has('token')) location.reload();
});
