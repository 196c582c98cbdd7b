"""Web UI and the SVG chart helpers shared by HTML reports (:mod:`modelyard.ui._svg`)."""
