// Release Passport console: small progressive enhancements only; every page
// works without JavaScript.
(function () {
  // Close open menus with Escape, and when focus or a click leaves them.
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    document.querySelectorAll("details[open]").forEach(function (d) { d.removeAttribute("open"); });
  });
  document.addEventListener("click", function (e) {
    document.querySelectorAll("details.menu-toggle[open]").forEach(function (d) {
      if (!d.contains(e.target)) d.removeAttribute("open");
    });
  });
  // Filters submit on change.
  document.querySelectorAll("form.filters select").forEach(function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });
  // Relative ages ("3m ago") next to timestamps.
  var now = Date.now();
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var at = Date.parse(t.getAttribute("datetime"));
    if (isNaN(at)) return;
    var s = Math.round((now - at) / 1000), txt;
    if (s < 0) txt = "in " + fmt(-s); else txt = fmt(s) + " ago";
    t.setAttribute("title", t.textContent);
    t.textContent = txt;
  });
  function fmt(s) {
    if (s < 90) return s + "s";
    if (s < 5400) return Math.round(s / 60) + "m";
    if (s < 129600) return Math.round(s / 3600) + "h";
    return Math.round(s / 86400) + "d";
  }
})();
