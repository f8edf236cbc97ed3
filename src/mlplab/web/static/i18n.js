// One message catalogue per language (i18n/en.json, i18n/ko.json, the same keys): every label, button,
// tooltip and message on the page comes from it. ?lang=ko|en in the address, else the browser's language.
"use strict";

const I18n = (() => {
  const SUPPORTED = ["en", "ko"];
  let catalogue = {};
  let language = "en";

  function pick(requested) {
    if (SUPPORTED.includes(requested)) return requested;
    const browser = (navigator.languages || [navigator.language || "en"]).map((l) => l.slice(0, 2).toLowerCase());
    return browser.find((l) => SUPPORTED.includes(l)) || "en";
  }

  async function load(requested) {
    language = pick(requested);
    const response = await fetch(`static/i18n/${language}.json`);
    catalogue = await response.json();
    document.documentElement.lang = language;
    apply(document);
    return language;
  }

  // t(KEY, {name: value}) -> the catalogue text of KEY with {name} filled in
  function t(key, values) {
    let text = catalogue[key];
    if (text === undefined) { console.warn("missing message", key); text = key; }
    if (values) for (const [name, value] of Object.entries(values)) text = text.replaceAll(`{${name}}`, value);
    return text;
  }

  function apply(root) {
    root.querySelectorAll("[data-i18n]").forEach((element) => { element.textContent = t(element.dataset.i18n); });
    root.querySelectorAll("[data-i18n-title]").forEach((element) => { element.title = t(element.dataset.i18nTitle); });
    document.title = t("title.page");
  }

  return { load, t, apply, get language() { return language; } };
})();
const t = I18n.t;
