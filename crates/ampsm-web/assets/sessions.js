// The sessions page: New session as a dialog (the section stays a collapsible section without
// JavaScript), the known-repository picker, the folder browser, the base branches of the chosen
// repository, and relative times kept fresh.
(function () {
  'use strict';
  var section = document.getElementById('new');
  var body = document.getElementById('new-body');
  var button = document.getElementById('new-session-button');
  var repo = document.getElementById('repo');
  var base = document.getElementById('base');
  var browser = document.getElementById('folder-browser');
  var dialog = null;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text != null) e.textContent = text;
    return e;
  }

  // The dialog: the section's form moves into it; the button (a link to #new without JS) opens it.
  if (section && body && button && typeof HTMLDialogElement === 'function') {
    dialog = el('dialog', { id: 'new-dialog', 'aria-labelledby': 'new-dialog-title' });
    var head = el('div', { 'class': 'dialog-head' });
    head.appendChild(el('h2', { id: 'new-dialog-title' }, 'New session'));
    var close = el('button', { type: 'button', id: 'new-dialog-close', 'aria-label': 'Close' }, 'Close');
    close.addEventListener('click', function () { dialog.close(); });
    head.appendChild(close);
    dialog.appendChild(head);
    dialog.appendChild(body);
    var wasOpen = section.open;
    section.replaceWith(dialog);
    button.addEventListener('click', function (ev) {
      ev.preventDefault();
      dialog.showModal();
      if (repo && !repo.value) repo.focus();
    });
    if (wasOpen || location.hash === '#new') dialog.showModal();
  }

  // Known repositories: the picker fills the path.
  var knownRow = document.getElementById('known-repo-row');
  var known = document.getElementById('known-repo');
  if (knownRow && known) {
    knownRow.hidden = false;
    known.addEventListener('change', function () {
      if (!known.value) return;
      repo.value = known.value;
      loadBranches();
    });
  }

  // Base branches of the repository in the field.
  // `loaded`: the path whose branches the list shows; `pending`: the one being asked for.
  var loaded = null, pending = null;
  function loadBranches() {
    if (!repo || !base) return;
    var path = repo.value.trim();
    if (!path || path === loaded || path === pending) return;
    pending = path;
    fetch('/browse/branches?repo=' + encodeURIComponent(path), { credentials: 'same-origin' })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (pending === path) pending = null;
        // The field changed meanwhile: its own request (or the next change) fills the list.
        if (path !== repo.value.trim()) return;
        loaded = path;
        var help = document.getElementById('base-help');
        var chosen = base.value;
        base.textContent = '';
        if (data.error) {
          base.appendChild(el('option', { value: '' }, 'default branch'));
          if (help) help.textContent = data.error;
          return;
        }
        base.appendChild(el('option', { value: '' }, 'default (' + data.default_base + ')'));
        data.branches.forEach(function (b) {
          var o = el('option', { value: b }, b);
          if (b === chosen) o.selected = true;
          base.appendChild(o);
        });
        if (help) help.textContent = data.branches.length + ' branch' + (data.branches.length === 1 ? '' : 'es') + ' in ' + data.root;
      })
      .catch(function () { if (pending === path) pending = null; });
  }
  if (repo) {
    repo.addEventListener('change', loadBranches);
    if (repo.value) loadBranches();
  }

  // Inside the desktop app: its native folder picker fills the path too.
  var pick = document.getElementById('pick-folder');
  var tauri = window.__AMPSM_DESKTOP__ && window.__TAURI_INTERNALS__;
  if (pick && repo && tauri) {
    pick.hidden = false;
    pick.addEventListener('click', function () {
      tauri.invoke('pick_folder').then(function (path) {
        if (path) { repo.value = path; loadBranches(); }
      }, function () {});
    });
  }

  // The folder browser: sub-folders only, git repositories marked; "Use" fills the path.
  var browse = document.getElementById('browse-button');
  function show(path) {
    var url = '/browse?format=json' + (path ? '&path=' + encodeURIComponent(path) : '');
    fetch(url, { credentials: 'same-origin' })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        browser.textContent = '';
        browser.hidden = false;
        if (data.error) {
          browser.appendChild(el('div', { 'class': 'err', role: 'alert' }, data.error));
          return;
        }
        var where = el('div', { 'class': 'where' });
        if (data.parent) {
          var up = el('button', { type: 'button', 'class': 'up', 'aria-label': 'Parent folder' }, '↑ Up');
          up.addEventListener('click', function () { show(data.parent); });
          where.appendChild(up);
        }
        where.appendChild(el('code', { 'class': 'path' }, data.path));
        if (data.git) {
          var useHere = el('button', { type: 'button', 'class': 'use' }, 'Use this repository');
          useHere.addEventListener('click', function () { use(data.path); });
          where.appendChild(useHere);
        }
        browser.appendChild(where);
        var list = el('ul', { 'aria-label': 'Folders in ' + data.path });
        data.folders.forEach(function (f) {
          var li = el('li', f.git ? { 'data-git': '1' } : {});
          var open = el('button', { type: 'button', 'class': 'open', 'data-path': f.path }, f.name + '/');
          open.addEventListener('click', function () { show(f.path); });
          li.appendChild(open);
          if (f.git) {
            li.appendChild(el('span', { 'class': 'badge git' }, 'git'));
            var u = el('button', { type: 'button', 'class': 'use', 'data-path': f.path }, 'Use');
            u.setAttribute('aria-label', 'Use ' + f.name);
            u.addEventListener('click', function () { use(f.path); });
            li.appendChild(u);
          }
          list.appendChild(li);
        });
        if (!data.folders.length) list.appendChild(el('li', { 'class': 'dim' }, 'No sub-folders.'));
        browser.appendChild(list);
        if (data.more) browser.appendChild(el('div', { 'class': 'dim' }, data.more + ' more folders not listed.'));
      });
  }
  function use(path) {
    repo.value = path;
    browser.hidden = true;
    loadBranches();
    repo.focus();
  }
  if (browse && browser && repo) {
    browse.setAttribute('role', 'button');
    browse.addEventListener('click', function (ev) {
      ev.preventDefault();
      if (!browser.hidden) { browser.hidden = true; return; }
      var start = repo.value.trim();
      show(start && start.charAt(0) === '/' ? start : '');
    });
  }

  // Relative times ("3 min ago") stay true while the page is open.
  function rel(ms) {
    var s = Math.floor((Date.now() - ms) / 1000);
    if (s < 45) return 'just now';
    if (s < 90) return '1 min ago';
    if (s < 3600) return Math.floor((s + 30) / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    if (s < 172800) return 'yesterday';
    if (s < 2592000) return Math.floor(s / 86400) + ' days ago';
    return null;
  }
  setInterval(function () {
    document.querySelectorAll('time[data-rel]').forEach(function (t) {
      var text = rel(Date.parse(t.getAttribute('datetime')));
      if (text && t.textContent !== text) t.textContent = text;
    });
  }, 30000);
})();
