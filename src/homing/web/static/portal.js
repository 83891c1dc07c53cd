// homing portal: progressive enhancement only. Every form works without this file;
// here the availability checks run as the user types, and Copy buttons appear.
"use strict";

(function () {
  function debounce(fn, ms) {
    let timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function show(element, state, text) {
    element.textContent = text;
    if (state) {
      element.dataset.state = state;
    } else {
      delete element.dataset.state;
    }
  }

  // A live check: `query()` gives the URL or null, `interpret(response, body)` the [state, text].
  function liveCheck(inputs, button, status, query, interpret) {
    let controller = null;
    async function check() {
      const url = query();
      if (controller) controller.abort();
      if (!url) {
        show(status, "", "");
        return;
      }
      controller = new AbortController();
      show(status, "pending", "Checking…");
      try {
        const response = await fetch(url, {
          signal: controller.signal,
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        const body = await response.json();
        const [state, text] = interpret(response, body);
        show(status, state, text);
      } catch (error) {
        if (error.name !== "AbortError") {
          show(status, "error", "Could not check right now; the server checks again when you submit.");
        }
      }
    }
    const later = debounce(check, 350);
    for (const input of inputs) {
      input.addEventListener(input.tagName === "SELECT" ? "change" : "input", later);
    }
    if (button) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        check();
      });
    }
  }

  const userId = document.querySelector("input[data-availability]");
  if (userId) {
    liveCheck(
      [userId],
      document.querySelector('[data-check="user_id"]'),
      document.getElementById("user_id-status"),
      function () {
        const value = userId.value.trim();
        return value ? userId.dataset.availability + "?user_id=" + encodeURIComponent(value) : null;
      },
      function (response, body) {
        const value = userId.value.trim();
        if (response.ok) {
          return body.available
            ? ["ok", value + " is available."]
            : ["taken", "User ID taken: " + value + " is already taken; choose another one."];
        }
        if (body.code === "USER_ID_INVALID") return ["invalid", "User ID not allowed: " + body.message];
        return ["error", "Could not check right now; the server checks again when you sign up."];
      }
    );
  }

  const label = document.querySelector("input[data-host-availability]");
  const zone = document.getElementById("zone");
  if (label && zone) {
    liveCheck(
      [label, zone],
      document.querySelector('[data-check="label"]'),
      document.getElementById("label-status"),
      function () {
        const value = label.value.trim();
        if (!value) return null;
        return label.dataset.hostAvailability + "?label=" + encodeURIComponent(value) +
          "&zone=" + encodeURIComponent(zone.value);
      },
      function (response, body) {
        if (!response.ok) return ["error", body.message || "Could not check right now."];
        if (body.available) return ["ok", body.message];
        return [body.code === "HOST_LABEL_INVALID" ? "invalid" : "taken", body.message];
      }
    );
  }

  // Copy buttons: hidden without JavaScript, where the text is selectable as it is.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    if (!source) continue;
    button.hidden = false;
    button.addEventListener("click", async function () {
      const text = source.textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch (error) {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    });
  }
})();
