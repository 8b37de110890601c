// Garage AI dashboard: live updates over server-sent events. A page names
// its event source in <body data-live>; the server sends `replace` events
// (an element id and server-rendered, escaped HTML for it), `append`
// events (an element id and plain text, added as text) and `end` when
// nothing more will change. Pages are complete without this script.
"use strict";

(function () {
  const url = document.body.dataset.live;
  const state = document.getElementById("live-state");
  if (!url || !window.EventSource) {
    return;
  }
  const say = (text) => {
    if (state) {
      state.textContent = text;
    }
  };
  const source = new EventSource(url);
  source.addEventListener("open", () => say("Live: updates as they happen."));
  source.addEventListener("error", () => say("Live updates paused; reconnecting…"));
  source.addEventListener("replace", (event) => {
    const update = JSON.parse(event.data);
    const target = document.getElementById(update.target);
    if (target) {
      target.innerHTML = update.html;
    }
  });
  source.addEventListener("append", (event) => {
    const update = JSON.parse(event.data);
    const target = document.getElementById(update.target);
    if (!target) {
      return;
    }
    const atBottom = target.scrollHeight - target.scrollTop - target.clientHeight < 8;
    target.append(document.createTextNode(update.text));
    if (atBottom) {
      target.scrollTop = target.scrollHeight;
    }
  });
  source.addEventListener("end", () => {
    source.close();
    say("Final: nothing more will change.");
  });
  window.addEventListener("pagehide", () => source.close());
})();
