// ponte console: a confirmation before a replay, nothing else (every page works without it).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form[action$='/replay']").forEach(function (f) {
    f.addEventListener("submit", function () {
      var b = f.querySelector("button");
      if (b) { b.disabled = true; }
    });
  });
});
