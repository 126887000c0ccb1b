// Search result summaries: Sphinx's search takes each result's preview text from the page's
// [role="main"] element, which in sphinx-book-theme also contains the article toolbar (the
// theme switch's "System Settings Light Dark" labels) and a print-only table of contents.
// Drop those two before Sphinx extracts the text, so previews show the chapter's own words.
(function () {
  const chrome = ".bd-header-article, #jb-print-docs-body";
  function install() {
    if (typeof Search === "undefined" || Search._kanNbPatched) return;
    const htmlToText = Search.htmlToText;
    Search.htmlToText = (htmlString, anchor) => {
      const doc = new DOMParser().parseFromString(htmlString, "text/html");
      doc.querySelectorAll(chrome).forEach((el) => el.remove());
      return htmlToText(doc.documentElement.outerHTML, anchor);
    };
    Search._kanNbPatched = true;
  }
  install();
  document.addEventListener("DOMContentLoaded", install);
})();
