// The web client's access token (app.js): when the gateway authenticates
// /api/* (docs/SECURITY.md "Authentication") and answers 401, the page shows
// a token field; the token saved there is kept in sessionStorage (this tab
// only, gone when it closes; never localStorage), handed to the client
// library as its `token` option (sent as `Authorization: Bearer`, never in
// a URL) and can be forgotten. Without authentication (./run.sh's default)
// no request is refused and nothing of this shows.

import {$, setText} from './dom.js';

/** The sessionStorage key of the saved token. */
export const TOKEN_KEY = 'agentstream.accessToken';

// Whether the gateway wants a token: a 401 was seen, or one is saved.
let required = false;
let onSaved = () => {};

function storage() {
  try {
    return window.sessionStorage;
  } catch (e) {
    return null;  // Storage disabled: the token lives as long as the page.
  }
}
let memoryToken = '';

/** The saved token, or ''. */
export function savedToken() {
  const s = storage();
  return s ? s.getItem(TOKEN_KEY) || '' : memoryToken;
}

function store(token) {
  const s = storage();
  if (!s) {
    memoryToken = token;
  } else if (token) {
    s.setItem(TOKEN_KEY, token);
  } else {
    s.removeItem(TOKEN_KEY);
  }
}

/**
 * The library's `token` option: undefined while no token is known to be
 * needed (the library then keeps EventSource), else a function returning
 * the saved token ('' when none: the gateway's 401 then shows the field).
 */
export function tokenOption() {
  return required ? savedToken : undefined;
}

function showForgetButton() {
  $('auth-clear').hidden = savedToken() === '';
}

/**
 * A request was answered 401: show the field; when the request carried a
 * token, say it was refused (with the gateway's error_description, in
 * `message`) and forget it.
 */
export function askForToken({sentToken, message}) {
  required = true;
  if (sentToken) store('');
  const error = $('auth-error');
  error.hidden = !sentToken;
  setText(error, sentToken ? message : '');
  $('auth').hidden = false;
  showForgetButton();
  $('auth-token').focus();
}

function save(event) {
  event.preventDefault();
  const input = $('auth-token');
  const token = input.value.trim();
  if (!token) {
    $('auth-error').hidden = false;
    setText($('auth-error'), 'Paste the access token first.');
    input.focus();
    return;
  }
  store(token);
  input.value = '';
  $('auth').hidden = true;
  $('auth-error').hidden = true;
  showForgetButton();
  onSaved();
}

function forget() {
  store('');
  showForgetButton();
  askForToken({sentToken: false, message: ''});
}

/** Wires the field; `saved()` runs after a token was saved (reload what was refused). */
export function initAccessToken(saved) {
  onSaved = saved;
  required = savedToken() !== '';
  $('auth-form').addEventListener('submit', save);
  $('auth-clear').addEventListener('click', forget);
  showForgetButton();
}
