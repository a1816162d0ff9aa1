// blocktrust_native._native.flows: thin bindings of the histogram and the flow runner. Every wait
// releases the GIL; the waiting loop (progress callbacks, Ctrl-C) is Python's FlowRun.wait.
#include "blocktrust/flows.hpp"

#include <pybind11/stl.h>

#include <chrono>

#include "bindings.hpp"
#include "blocktrust/histogram.hpp"

namespace blocktrust::bindings {

namespace {

namespace fl = blocktrust::flows;

py::dict progress_dict(const fl::Progress& p) {
  py::dict d;
  d["elapsed_s"] = p.elapsed_s;
  d["iterations"] = p.iterations;
  d["failed_iterations"] = p.failed_iterations;
  d["requests"] = p.requests;
  d["failed_requests"] = p.failed_requests;
  d["active"] = p.active;
  return d;
}

}  // namespace

void register_flows(py::module_& m) {
  auto sub = m.def_submodule("flows", "Latency histograms and the flow runner.");

  py::class_<fl::Histogram>(sub, "Histogram",
                            "HDR-style log-linear latency histogram (1 µs, 3 significant digits).")
      .def(py::init<>())
      .def("record_us", &fl::Histogram::record_us, py::arg("value_us"), py::arg("count") = 1,
           "Records a value in microseconds `count` times.")
      .def("merge", &fl::Histogram::merge, py::arg("other"), "Adds every count of `other`.")
      .def("percentile_us", &fl::Histogram::percentile_us, py::arg("p"),
           "The value at percentile p (0..100) in microseconds.")
      .def_property_readonly("count", &fl::Histogram::count, "Number of values recorded.")
      .def_property_readonly("min_us", &fl::Histogram::min_us, "Smallest value (µs).")
      .def_property_readonly("max_us", &fl::Histogram::max_us, "Largest value (µs).")
      .def_property_readonly("mean_us", &fl::Histogram::mean_us, "Mean value (µs).")
      .def_property_readonly("saturated", &fl::Histogram::saturated,
                             "Values clamped at the top of the range.")
      .def(
          "to_bytes", [](const fl::Histogram& h) { return py::bytes(h.serialize()); },
          "Compact binary form (mergeable across processes).")
      .def_static(
          "from_bytes",
          [](const py::bytes& b) { return fl::Histogram::deserialize(std::string(b)); },
          py::arg("data"), "Rebuilds a histogram from to_bytes(); HistogramFormatError if bad.");

  py::class_<fl::FlowRun>(sub, "FlowRun", "One run of a compiled flow.")
      .def(py::init([](const std::string& flow_json, const std::string& base_url, int vus,
                       std::int64_t iterations, double duration, double ramp_up, double rate,
                       int threads, int max_failures, const http::HttpOptions& http) {
             fl::RunOptions o;
             o.base_url = base_url;
             o.vus = vus;
             o.iterations = iterations;
             o.duration_s = duration;
             o.ramp_up_s = ramp_up;
             o.rate = rate;
             o.threads = threads;
             o.max_failures = max_failures;
             o.http = http;
             o.http.follow_redirects = false;  // each step has its own follow_redirects
             return std::make_unique<fl::FlowRun>(flow_json, std::move(o));
           }),
           py::arg("flow_json"), py::arg("base_url"), py::arg("vus"), py::arg("iterations"),
           py::arg("duration"), py::arg("ramp_up"), py::arg("rate"), py::arg("threads"),
           py::arg("max_failures"), py::arg("http"))
      .def("start", &fl::FlowRun::start, "Starts the worker threads.")
      .def("cancel", &fl::FlowRun::cancel, py::call_guard<py::gil_scoped_release>(),
           "Stops the run; wait() then returns the partial report (thread-safe).")
      .def(
          "progress", [](const fl::FlowRun& r) { return progress_dict(r.progress()); },
          "Counters so far.")
      .def(
          "wait_for",
          [](fl::FlowRun& r, double timeout) {
            return r.wait_for(std::chrono::milliseconds(static_cast<std::int64_t>(timeout * 1000)));
          },
          py::arg("timeout"), py::call_guard<py::gil_scoped_release>(),
          "Waits up to `timeout` seconds for the end; True when the run has ended.")
      .def("report_json", &fl::FlowRun::report_json, py::call_guard<py::gil_scoped_release>(),
           "The report as JSON text; waits for the end.");
}

}  // namespace blocktrust::bindings
