// tsubame console: progressive enhancement only; every page works without this file.
// - times: <time datetime> shown in the viewer's time zone (UTC stays in the title)
// - copy buttons: [data-copy] copies its value
// - confirmations: forms with [data-confirm] ask first
// - refresh in place: [data-refresh=N] re-fetches this page every N seconds and swaps
//   the element with the same position, without reloading
// - live counts and previews in the segment, template and campaign editors
(function () {
  "use strict";
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      el.textContent = when.toLocaleString(document.documentElement.lang || undefined, {
        year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit"
      });
    });
  }
  function copyButtons(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var value = button.getAttribute("data-copy");
        var done = function () { button.setAttribute("data-copied", "1"); };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(value).then(done);
        } else {
          var area = document.createElement("textarea");
          area.value = value;
          document.body.appendChild(area);
          area.select();
          document.execCommand("copy");
          area.remove();
          done();
        }
      });
    });
  }
  function confirmations(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }
  function refreshers() {
    var all = document.querySelectorAll("[data-refresh]");
    all.forEach(function (el, index) {
      var seconds = Math.max(1, parseInt(el.getAttribute("data-refresh"), 10) || 30);
      var timer = setInterval(function () {
        if (document.hidden) return;
        fetch(window.location.href, { credentials: "same-origin", headers: { "X-Refresh": "1" } })
          .then(function (response) {
            if (response.redirected || !response.ok) { clearInterval(timer); return null; }
            return response.text();
          })
          .then(function (html) {
            if (html === null) return;
            var doc = new DOMParser().parseFromString(html, "text/html");
            var fresh = doc.querySelectorAll("[data-refresh]")[index];
            var current = document.querySelectorAll("[data-refresh]")[index];
            if (!current) { clearInterval(timer); return; }
            if (!fresh) {
              // Finished (a job's page stops refreshing): take the new content once.
              var replacement = doc.getElementById(current.id);
              if (replacement) current.replaceWith(replacement);
              localTimes(document);
              clearInterval(timer);
              return;
            }
            current.replaceWith(fresh);
            localTimes(fresh);
            copyButtons(fresh);
            confirmations(fresh);
          })
          .catch(function () {});
      }, seconds * 1000);
    });
  }
  // The segment editor: the count (or the error) follows typing, a moment after it stops.
  function segmentCounts() {
    document.querySelectorAll("textarea[data-segment-count]").forEach(function (area) {
      var result = document.getElementById("segment-result");
      if (!result) return;
      var timer = null;
      var asked = 0;
      area.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () {
          var ticket = ++asked;
          var url = area.getAttribute("data-segment-count") + "?query=" + encodeURIComponent(area.value);
          fetch(url, { credentials: "same-origin" })
            .then(function (response) { return response.ok ? response.json() : null; })
            .then(function (answer) {
              if (!answer || ticket !== asked) return;
              var p = document.createElement("p");
              if (answer.error) {
                p.className = "error";
                p.id = "segment-error";
                p.textContent = answer.error;
              } else {
                var strong = document.createElement("strong");
                strong.id = "segment-count";
                strong.textContent = answer.count.toLocaleString();
                p.appendChild(strong);
                var label = result.getAttribute("data-contacts") || "";
                p.appendChild(document.createTextNode(" " + label + " (" + answer.elapsed_ms + " ms)"));
              }
              result.replaceChildren(p);
            })
            .catch(function () {});
        }, 250);
      });
    });
  }
  // The template editor: the preview follows typing, a moment after it stops. Subject and
  // text come as JSON; the HTML part is posted to the preview frame (its answer forbids
  // scripts), as the "Show the preview" button does without a script.
  function templatePreview() {
    var form = document.getElementById("template-form");
    var button = document.getElementById("template-preview-button");
    var result = document.getElementById("template-preview-result");
    if (!form || !button || !result) return;
    var timer = null;
    var asked = 0;
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var ticket = ++asked;
        var body = new URLSearchParams(new FormData(form));
        fetch(form.getAttribute("data-preview"), { method: "POST", body: body, credentials: "same-origin" })
          .then(function (response) { return response.ok ? response.json() : null; })
          .then(function (answer) {
            if (!answer || ticket !== asked) return;
            if (answer.error) {
              var p = document.createElement("p");
              p.className = "error";
              p.id = "template-preview-error";
              p.textContent = answer.error;
              result.replaceChildren(p);
              return;
            }
            var line = document.createElement("p");
            var label = document.createElement("strong");
            label.textContent = (document.querySelector("label[for=template-subject]") || {}).textContent + ":";
            var subject = document.createElement("span");
            subject.id = "template-preview-subject";
            subject.textContent = answer.subject;
            line.append(label, " ", subject);
            var text = document.createElement("pre");
            text.id = "template-preview-text";
            text.textContent = answer.text || "";
            result.replaceChildren(line, text);
            form.requestSubmit(button);
          })
          .catch(function () {});
      }, 300);
    });
  }
  // The campaign wizard: the audience's count follows the checkboxes.
  function audienceCounts() {
    var form = document.getElementById("campaign-form");
    var result = document.getElementById("audience-result");
    if (!form || !result) return;
    var names = ["list", "segment", "exclude_list", "exclude_segment"];
    var asked = 0;
    form.addEventListener("change", function (event) {
      if (names.indexOf(event.target.name) < 0) return;
      var ticket = ++asked;
      var query = new URLSearchParams();
      form.querySelectorAll("input[type=checkbox]:checked").forEach(function (box) {
        if (names.indexOf(box.name) >= 0) query.append(box.name, box.value);
      });
      fetch(form.getAttribute("data-audience-count") + "?" + query.toString(), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (answer) {
          if (!answer || ticket !== asked) return;
          var p = document.createElement("p");
          if (answer.error) {
            p.className = "error";
            p.id = "audience-error";
            p.textContent = answer.error;
          } else {
            var strong = document.createElement("strong");
            strong.id = "audience-count";
            strong.textContent = answer.count.toLocaleString();
            p.appendChild(strong);
            p.appendChild(document.createTextNode(" " + (result.getAttribute("data-contacts") || "")));
          }
          result.replaceChildren(p);
        })
        .catch(function () {});
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    copyButtons(document);
    confirmations(document);
    refreshers();
    segmentCounts();
    templatePreview();
    audienceCounts();
  });
})();
