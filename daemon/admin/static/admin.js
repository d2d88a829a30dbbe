// The admin page's script: revealing e-mails, confirming destructive forms, refreshing the
// requests table. Served from /admin/static/admin.js (the CSP allows no inline script).
// Everything it writes into the page goes through textContent, never innerHTML.
"use strict";

(function () {
  var POLL_MS = 2000;

  function revealButtons() {
    document.querySelectorAll("button.reveal").forEach(function (button) {
      button.addEventListener("click", function () {
        var address = button.parentElement.querySelector(".address");
        if (!address) {
          return;
        }
        var showing = button.getAttribute("aria-pressed") === "true";
        address.textContent = showing ? address.dataset.masked : button.dataset.email;
        button.textContent = showing ? "show" : "hide";
        button.setAttribute("aria-pressed", showing ? "false" : "true");
      });
    });
  }

  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) {
          event.preventDefault();
        }
      });
    });
  }

  function text(value) {
    return value === null || value === undefined || value === "" ? "-" : String(value);
  }

  // The same cells as pages.request_cells() renders on the server.
  function requestCells(entry) {
    var tokens = "-";
    if (entry.input_tokens !== null && entry.input_tokens !== undefined ||
        entry.output_tokens !== null && entry.output_tokens !== undefined) {
      tokens = text(entry.input_tokens) + " / " + text(entry.output_tokens);
    }
    return [text(entry.time), text(entry.client), text(entry.protocol), text(entry.model), text(entry.account),
      text(entry.status), text(entry.ttfb_ms), text(entry.duration_ms), tokens, text(entry.attempts)];
  }

  function fillRequests(table, entries) {
    var body = document.createElement("tbody");
    entries.forEach(function (entry) {
      var row = document.createElement("tr");
      row.className = "request" + (typeof entry.status === "number" && entry.status >= 400 ? " failed" : "");
      requestCells(entry).forEach(function (cell) {
        var td = document.createElement("td");
        td.textContent = cell;
        row.appendChild(td);
      });
      body.appendChild(row);
    });
    if (!entries.length) {
      var row = document.createElement("tr");
      var td = document.createElement("td");
      row.className = "empty";
      td.colSpan = table.tHead ? table.tHead.rows[0].cells.length : 1;
      td.textContent = "No requests yet.";
      row.appendChild(td);
      body.appendChild(row);
    }
    table.replaceChild(body, table.tBodies[0]);
  }

  function pollRequests(table) {
    var status = document.getElementById("requests-status");
    function say(message) {
      if (status) {
        status.textContent = message;
      }
    }
    function poll() {
      fetch("/admin/requests.json", {credentials: "same-origin", cache: "no-store",
                                     headers: {"Accept": "application/json"}})
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (document_) {
          fillRequests(table, document_.requests || []);
          say("");
        })
        .catch(function (error) {
          say("Not refreshed: " + error.message);
        })
        .finally(function () {
          window.setTimeout(poll, POLL_MS);
        });
    }
    window.setTimeout(poll, POLL_MS);
  }

  function start() {
    revealButtons();
    confirmForms();
    var requests = document.querySelector("table#requests");
    if (requests) {
      pollRequests(requests);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
