// Loads plotly.js into the page once. Shared by the preload script that
// app.py draws first (plotly_live.preload_library) and every live chart
// (plotly_live.js): whichever runs first starts the download, the others wait
// on the same promise; after a failure the next caller tries again.
function loadPlotly(url) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!window.__nnpgPlotlyLoading) {
    window.__nnpgPlotlyLoading = new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = url;
      script.async = true;
      script.onload = () => (window.Plotly ? resolve(window.Plotly)
        : reject(new Error(`${url} did not define Plotly`)));
      script.onerror = () => {
        window.__nnpgPlotlyLoading = null; // a later mount tries again
        script.remove();
        reject(new Error(`could not load ${url}`));
      };
      document.head.appendChild(script);
    });
  }
  return window.__nnpgPlotlyLoading;
}
