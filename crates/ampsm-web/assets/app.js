// The dashboard's shared script (every page; pages work without it). It adds:
// - the theme toggle (auto follows the OS preference, or light, or dark; remembered in this browser);
// - a confirmation dialog for any form with data-confirm="question";
// - keyboard shortcuts, listed by "?";
// - optional browser notifications when a session finishes, fails or waits (asked for once, on a click).
(function () {
  'use strict';
  var root = document.documentElement;

  // ---- theme -------------------------------------------------------------------------------------------
  var THEME_KEY = 'ampsm-theme';
  var order = ['auto', 'light', 'dark'];
  function themeNow() { return root.getAttribute('data-theme') || 'auto'; }
  function setTheme(t, remember) {
    if (t === 'auto') root.removeAttribute('data-theme'); else root.setAttribute('data-theme', t);
    if (remember) { try { localStorage.setItem(THEME_KEY, t); } catch (e) {} }
    var b = document.getElementById('theme-toggle');
    if (b) {
      b.textContent = 'Theme: ' + t;
      b.setAttribute('aria-label', 'Theme: ' + t + ' (change)');
    }
  }
  function cycleTheme() { setTheme(order[(order.indexOf(themeNow()) + 1) % order.length], true); }
  // For scripts (the tests' screenshots): pick a theme as the toggle does.
  window.ampsmSetTheme = function (t) { setTheme(t, true); };

  // ---- confirmation ------------------------------------------------------------------------------------
  function confirmDialog(question, yes) {
    var d = document.getElementById('confirm-dialog');
    if (!d || typeof d.showModal !== 'function') { if (window.confirm(question)) yes(); return; }
    document.getElementById('confirm-text').textContent = question;
    var ok = document.getElementById('confirm-ok');
    var cancel = document.getElementById('confirm-cancel');
    function done(go) {
      ok.removeEventListener('click', onOk);
      cancel.removeEventListener('click', onCancel);
      d.removeEventListener('cancel', onCancel);
      d.close();
      if (go) yes();
    }
    function onOk(e) { e.preventDefault(); done(true); }
    function onCancel(e) { e.preventDefault(); done(false); }
    ok.addEventListener('click', onOk);
    cancel.addEventListener('click', onCancel);
    d.addEventListener('cancel', onCancel);
    d.showModal();
    cancel.focus();
  }
  document.addEventListener('submit', function (e) {
    var form = e.target;
    var question = form.getAttribute && form.getAttribute('data-confirm');
    if (!question || form.__ampsmConfirmed) return;
    e.preventDefault();
    var submitter = e.submitter || null;
    confirmDialog(question, function () {
      form.__ampsmConfirmed = true;
      if (form.requestSubmit) form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
      else form.submit();
      form.__ampsmConfirmed = false;
    });
  }, true);

  // ---- shortcuts ---------------------------------------------------------------------------------------
  var pendingG = 0;
  var GO = { s: '/', b: '/batches', m: '/bench', a: '/approvals', c: '/settings' };
  function typing(el) {
    if (!el) return false;
    var t = el.tagName;
    return el.isContentEditable || t === 'INPUT' || t === 'TEXTAREA' || t === 'SELECT';
  }
  function openHelp() {
    var h = document.getElementById('help-dialog');
    if (h && typeof h.showModal === 'function' && !h.open) h.showModal();
  }
  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(document.activeElement)) return;
    if (document.querySelector('dialog[open]')) return;
    var k = e.key;
    if (pendingG && Date.now() - pendingG < 1500 && GO[k]) {
      pendingG = 0; e.preventDefault(); location.href = GO[k]; return;
    }
    pendingG = 0;
    if (k === 'g') { pendingG = Date.now(); return; }
    if (k === '?') { e.preventDefault(); openHelp(); return; }
    if (k === 't') { e.preventDefault(); cycleTheme(); return; }
    if (k === '/') {
      var q = document.querySelector('[data-shortcut="search"]');
      if (q) { e.preventDefault(); q.focus(); }
      return;
    }
    if (k === 'n') {
      var n = document.querySelector('[data-shortcut="new"]');
      if (n) { e.preventDefault(); n.click(); }
    }
  });

  // ---- browser notifications ---------------------------------------------------------------------------
  // Inside the desktop app the app itself notifies, natively: the page's own notifications stay off.
  var NOTIFY_KEY = 'ampsm-notify';
  var IN_DESKTOP = !!window.__AMPSM_DESKTOP__;
  function notifyOn() {
    if (IN_DESKTOP) return false;
    try { return localStorage.getItem(NOTIFY_KEY) === 'on' && window.Notification && Notification.permission === 'granted'; }
    catch (e) { return false; }
  }
  function notifyLabel() {
    var b = document.getElementById('notify-toggle');
    if (!b) return;
    if (!window.Notification || IN_DESKTOP) { b.hidden = true; return; }
    b.textContent = notifyOn() ? 'Notifications: on' : 'Notifications: off';
    b.setAttribute('aria-pressed', notifyOn() ? 'true' : 'false');
  }
  var stream = null;
  function listen() {
    if (stream || !notifyOn() || !window.EventSource) return;
    stream = new EventSource('/notifications');
    stream.addEventListener('session', function (m) {
      var d = JSON.parse(m.data);
      var n = new Notification('amp-sessions: ' + d.name, { body: d.text, tag: 'ampsm-' + d.id });
      n.onclick = function () { window.focus(); location.href = '/s/' + d.id; };
    });
  }
  function toggleNotify() {
    if (!window.Notification || IN_DESKTOP) return;
    if (notifyOn()) {
      try { localStorage.setItem(NOTIFY_KEY, 'off'); } catch (e) {}
      if (stream) { stream.close(); stream = null; }
      notifyLabel();
      return;
    }
    Notification.requestPermission().then(function (p) {
      if (p === 'granted') { try { localStorage.setItem(NOTIFY_KEY, 'on'); } catch (e) {} listen(); }
      notifyLabel();
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    setTheme(themeNow(), false);
    var t = document.getElementById('theme-toggle');
    if (t) t.addEventListener('click', cycleTheme);
    var h = document.getElementById('help-toggle');
    if (h) h.addEventListener('click', openHelp);
    var hc = document.getElementById('help-close');
    if (hc) hc.addEventListener('click', function () { document.getElementById('help-dialog').close(); });
    var n = document.getElementById('notify-toggle');
    if (n) n.addEventListener('click', toggleNotify);
    notifyLabel();
    listen();
  });
})();
