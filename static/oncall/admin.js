/* Oncall admin: copy buttons for secret keys and confirmation of dangerous one-click forms.
 *
 * A copy button names the element holding the text with data-copy-target. The result is
 * announced in the sibling .oncall-copy-status (role="status", aria-live="polite"), so screen
 * reader users hear it too. The clipboard API needs a secure context (HTTPS or localhost);
 * elsewhere a hidden textarea and execCommand("copy") are tried, and when even that is refused
 * the text is selected for the person to copy with the keyboard.
 */
(function () {
    "use strict";

    function announce(button, text) {
        var status = button.parentNode.querySelector(".oncall-copy-status");
        if (!status) {
            return;
        }
        status.textContent = "";
        // A fresh text node after clearing makes screen readers announce repeated messages.
        window.setTimeout(function () {
            status.textContent = text;
        }, 50);
        window.clearTimeout(button._oncallTimer);
        button._oncallTimer = window.setTimeout(function () {
            status.textContent = "";
        }, 4000);
    }

    function selectContents(element) {
        var range = document.createRange();
        range.selectNodeContents(element);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
    }

    function copyWithTextarea(text) {
        var area = document.createElement("textarea");
        area.value = text;
        area.setAttribute("readonly", "");
        area.style.position = "fixed";
        area.style.top = "-1000px";
        area.style.opacity = "0";
        document.body.appendChild(area);
        area.select();
        var copied = false;
        try {
            copied = document.execCommand("copy");
        } catch (error) {
            copied = false;
        }
        document.body.removeChild(area);
        return copied;
    }

    function copy(button) {
        var target = document.getElementById(button.getAttribute("data-copy-target"));
        if (!target) {
            return;
        }
        var text = target.textContent.trim();
        var fallback = function () {
            if (copyWithTextarea(text)) {
                announce(button, "Copied.");
            } else {
                selectContents(target);
                announce(button, "Selected: press Ctrl+C (⌘C on a Mac) to copy.");
            }
        };
        if (navigator.clipboard && window.isSecureContext) {
            navigator.clipboard.writeText(text).then(function () {
                announce(button, "Copied.");
            }, fallback);
        } else {
            fallback();
        }
    }

    document.addEventListener("click", function (event) {
        var button = event.target.closest(".oncall-copy");
        if (button) {
            event.preventDefault();
            copy(button);
        }
    });

    document.addEventListener("submit", function (event) {
        var form = event.target;
        var question = form.getAttribute && form.getAttribute("data-confirm");
        if (question && !window.confirm(question)) {
            event.preventDefault();
        }
    });
})();
