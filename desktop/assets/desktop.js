// Run in every page of the app's window before the page's own scripts (Tauri's initialization script).
// It tells the page scripts they run inside the app (native notifications, the folder picker), and holds
// the question asked when the window closes while runs go on: a dialog of the page, whose answer goes
// back to the app as a navigation to /__desktop/close?keep=1 or keep=0, which the app stops and acts on.
window.__AMPSM_DESKTOP__ = { version: '0.1.0' };
window.__ampsmAskClose = function (text) {
  var old = document.getElementById('desktop-close');
  if (old) old.remove();
  var d = document.createElement('dialog');
  d.id = 'desktop-close';
  d.setAttribute('aria-labelledby', 'desktop-close-text');
  var p = document.createElement('p');
  p.id = 'desktop-close-text';
  p.style.whiteSpace = 'pre-line';
  p.textContent = text;
  var row = document.createElement('div');
  row.className = 'buttons';
  var answered = false;
  function answer(keep) {
    if (answered) return;
    answered = true;
    if (d.open) d.close();
    location.href = '/__desktop/close?keep=' + (keep ? '1' : '0');
  }
  var keep = document.createElement('button');
  keep.type = 'button';
  keep.id = 'desktop-keep';
  keep.textContent = 'Keep running';
  keep.addEventListener('click', function () { answer(true); });
  var stop = document.createElement('button');
  stop.type = 'button';
  stop.id = 'desktop-stop';
  stop.className = 'danger';
  stop.textContent = 'Stop them';
  stop.addEventListener('click', function () { answer(false); });
  // Escape (or any other way of closing it) takes the default: stop.
  d.addEventListener('close', function () { answer(false); });
  row.appendChild(keep);
  row.appendChild(stop);
  d.appendChild(p);
  d.appendChild(row);
  document.body.appendChild(d);
  d.showModal();
  stop.focus();
};
