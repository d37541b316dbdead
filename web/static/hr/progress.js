// The run's progress bar: poll the server's progress and update the bar; reload for the summary when done.
// Without scripts the page refreshes itself (see the <noscript> in hr/job.html).
(function () {
  "use strict";
  var box = document.getElementById("job");
  if (!box || box.dataset.finished === "true") { return; }
  var bar = document.getElementById("job-bar");
  var text = document.getElementById("job-text");
  var url = box.dataset.progressUrl;

  function show(p) {
    bar.max = Math.max(p.total, 1);
    bar.value = p.done;
    bar.textContent = p.done + " of " + p.total;
    text.textContent = "Working: " + p.done + " of " + (p.total || "?") + " officers handled (" +
      p.started + " started, " + p.skipped + " skipped)…";
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (p) {
        show(p);
        if (p.finished) { window.location.reload(); } else { window.setTimeout(poll, 1000); }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }

  poll();
}());
