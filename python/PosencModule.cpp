//===- PosencModule.cpp - the _posenc Python extension --------------------===//
//
// Exposes CompiledModule to Python: compile IR text, call its functions on
// numpy arrays. The only file of the package that includes pybind11.
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Utils/LowRank.h"
#include "posenc/Runtime/Runner.h"
#include "posenc/Version.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>

namespace py = pybind11;
using namespace mlir::posenc::runtime;

namespace {
/// Raised for bad IR, failed lowering and bad inputs; carries the MLIR
/// diagnostics.
struct PosencError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void raise(llvm::Error err) {
  throw PosencError(llvm::toString(std::move(err)));
}

py::dict toPython(const DiagnosticRecord &d) {
  py::dict out;
  out["location"] = d.location;
  out["severity"] = d.severity;
  out["message"] = d.message;
  py::list notes;
  for (const DiagnosticRecord &n : d.notes)
    notes.append(toPython(n));
  out["notes"] = notes;
  return out;
}

/// posenc.Error(text) with `.diagnostics`: a list of {location, severity,
/// message, notes} dicts.
[[noreturn]] void
raiseWithDiagnostics(llvm::Error err,
                     const std::vector<DiagnosticRecord> &diagnostics) {
  std::string text = llvm::toString(std::move(err));
  py::object type = py::module_::import("posenc._posenc").attr("Error");
  py::object exc = type(text);
  py::list records;
  for (const DiagnosticRecord &d : diagnostics)
    records.append(toPython(d));
  exc.attr("diagnostics") = records;
  PyErr_SetObject(type.ptr(), exc.ptr());
  throw py::error_already_set();
}

template <typename T> T unwrap(llvm::Expected<T> value) {
  if (!value)
    raise(value.takeError());
  return std::move(*value);
}

ElementKind kindOfDtype(const py::dtype &dt) {
  char k = dt.kind();
  size_t size = dt.itemsize();
  if (k == 'f' && size == 4)
    return ElementKind::f32;
  if (k == 'f' && size == 2)
    return ElementKind::f16;
  if (k == 'f' && size == 8)
    return ElementKind::f64;
  if (k == 'i' && size == 4)
    return ElementKind::i32;
  if (k == 'i' && size == 8)
    return ElementKind::i64;
  if (k == 'u' && size == 2)
    return ElementKind::bf16;
  throw PosencError("unsupported dtype " + std::string(py::str(dt)) +
                    " (float32, float16, float64, int32, int64, or uint16 "
                    "bit patterns for bfloat16)");
}

py::dtype dtypeOfKind(ElementKind kind) {
  switch (kind) {
  case ElementKind::f32:
    return py::dtype::of<float>();
  case ElementKind::f16:
    return py::dtype("float16");
  case ElementKind::bf16:
    return py::dtype::of<uint16_t>();
  case ElementKind::f64:
    return py::dtype::of<double>();
  case ElementKind::i32:
    return py::dtype::of<int32_t>();
  case ElementKind::i64:
    return py::dtype::of<int64_t>();
  }
  throw PosencError("unknown element kind");
}

/// Whether `dt` stores its elements in this machine's byte order.
bool nativeOrder(const py::dtype &dt) {
  return dt.attr("isnative").cast<bool>();
}

/// A tensor argument: the numpy array's own elements when they are
/// C-contiguous, aligned and in native byte order, else a converted copy
/// (values kept, never raw bytes reinterpreted); CompiledModule::run copies
/// them once for the call. `keep` holds the array.
HostArray toHost(const py::handle &obj, std::vector<py::array> &keep) {
  py::array any = py::array::ensure(obj);
  if (!any)
    throw PosencError("arguments must be numpy arrays");
  HostArray host;
  host.kind = kindOfDtype(any.dtype());
  if (!nativeOrder(any.dtype()))
    any = py::array::ensure(
        any.attr("astype")(any.dtype().attr("newbyteorder")("=")));
  // Unaligned elements are fine: run() copies them bytewise.
  py::array arr = py::array::ensure(any, py::array::c_style);
  for (py::ssize_t i = 0; i < arr.ndim(); ++i)
    host.shape.push_back(arr.shape(i));
  host.external = static_cast<uint8_t *>(const_cast<void *>(arr.data()));
  keep.push_back(arr);
  return host;
}

/// The numpy array itself, for a memref argument: no copy and no
/// conversion, so writes of the compiled code land in it. `keep` holds the
/// array for the call.
HostArray byReference(const py::handle &obj, const TensorSpec &spec,
                      size_t index, std::vector<py::array> &keep) {
  auto arr = py::reinterpret_borrow<py::array>(obj);
  // NPY_ARRAY_ALIGNED: compiled code loads whole elements.
  constexpr int aligned = 0x0100;
  if (!py::isinstance<py::array>(obj) || !(arr.flags() & py::array::c_style) ||
      !(arr.flags() & aligned) || !nativeOrder(arr.dtype()) ||
      kindOfDtype(arr.dtype()) != spec.kind)
    throw PosencError("input #" + std::to_string(index) +
                      " is passed by "
                      "reference (" +
                      spec.describe() +
                      "): it must be a "
                      "C-contiguous, aligned numpy array of that element "
                      "type in native byte order, without a copy");
  HostArray host;
  host.kind = spec.kind;
  for (py::ssize_t i = 0; i < arr.ndim(); ++i)
    host.shape.push_back(arr.shape(i));
  // Read-only arrays (a memory-mapped checkpoint) are fine as long as the
  // function only reads them; writability is the IR's contract.
  host.external = static_cast<uint8_t *>(const_cast<void *>(arr.data()));
  keep.push_back(arr);
  return host;
}

/// A result as a numpy array that owns its bytes (moved, not copied).
py::array toNumpy(HostArray &&host) {
  std::vector<py::ssize_t> shape(host.shape.begin(), host.shape.end());
  if (host.bytes.empty())
    return py::array(dtypeOfKind(host.kind), shape);
  auto *bytes = new AlignedBytes(std::move(host.bytes));
  py::capsule owner(bytes,
                    [](void *p) { delete static_cast<AlignedBytes *>(p); });
  return py::array(dtypeOfKind(host.kind), shape, bytes->data(), owner);
}

py::dict describe(const Signature &sig) {
  auto specs = [](llvm::ArrayRef<TensorSpec> list) {
    py::list out;
    for (const TensorSpec &s : list)
      out.append(py::make_tuple(py::tuple(py::cast(std::vector<int64_t>(
                                    s.shape.begin(), s.shape.end()))),
                                elementName(s.kind).str()));
    return out;
  };
  py::dict d;
  d["inputs"] = specs(sig.inputs);
  d["results"] = specs(sig.results);
  py::list byRef;
  for (auto [i, s] : llvm::enumerate(sig.inputs))
    if (s.byReference)
      byRef.append(i);
  d["by_reference"] = byRef;
  py::list names;
  for (const TensorSpec &s : sig.inputs)
    names.append(s.name);
  d["input_names"] = names;
  return d;
}

struct PyModule {
  std::unique_ptr<CompiledModule> module;

  py::list call(const std::string &name, const py::args &args) {
    const Signature &sig = unwrap(module->signature(name));
    std::vector<HostArray> inputs;
    std::vector<py::array> keep;
    for (auto [i, a] : llvm::enumerate(args)) {
      if (i < sig.inputs.size() && sig.inputs[i].byReference)
        inputs.push_back(byReference(a, sig.inputs[i], i, keep));
      else
        inputs.push_back(toHost(a, keep));
    }
    llvm::Expected<std::vector<HostArray>> results = [&] {
      py::gil_scoped_release release;
      return module->run(name, inputs);
    }();
    py::list out;
    for (HostArray &r : unwrap(std::move(results)))
      out.append(toNumpy(std::move(r)));
    return out;
  }
};
} // namespace

PYBIND11_MODULE(_posenc, m) {
  m.doc() = "posenc compiler runtime: compile posenc IR and run it on numpy "
            "arrays";
  py::register_exception<PosencError>(m, "Error", PyExc_RuntimeError);

  py::class_<PyModule>(m, "Module")
      .def_property_readonly("functions",
                             [](const PyModule &self) {
                               return std::vector<std::string>(
                                   self.module->functions().begin(),
                                   self.module->functions().end());
                             })
      .def(
          "signature",
          [](const PyModule &self, const std::string &name) {
            return describe(unwrap(self.module->signature(name)));
          },
          py::arg("name"))
      .def("call", &PyModule::call, py::arg("name"))
      .def_property_readonly(
          "last_call_ms",
          [](const PyModule &self) { return self.module->lastCallMs(); },
          "Wall time of the compiled code alone in the last call (ms)");

  m.def(
      "compile",
      [](const std::string &source, const std::string &pipeline,
         const std::string &sourceName) {
        std::vector<DiagnosticRecord> diagnostics;
        llvm::Expected<std::unique_ptr<CompiledModule>> compiled = [&] {
          py::gil_scoped_release release;
          return CompiledModule::compile(source, pipeline, sourceName,
                                         &diagnostics);
        }();
        if (!compiled)
          raiseWithDiagnostics(compiled.takeError(), diagnostics);
        return PyModule{std::move(*compiled)};
      },
      py::arg("source"), py::arg("pipeline") = "posenc-lower-to-cpu",
      py::arg("source_name") = "<input>");
  m.def(
      "pipeline_options",
      [](const std::string &pipeline) {
        return unwrap(pipelineOptions(pipeline));
      },
      py::arg("pipeline"),
      "[(option, default)] of a posenc pipeline, in its textual form");
  m.def(
      "rope_table",
      [](const std::string &scaling, double base, int64_t rotary,
         int64_t seqLen) {
        RopeTable table = unwrap(ropeTable(scaling, base, rotary, seqLen));
        return py::make_tuple(py::array(py::dtype::of<double>(),
                                        {py::ssize_t(table.omega.size())},
                                        table.omega.data()),
                              table.attentionFactor);
      },
      py::arg("scaling"), py::arg("base"), py::arg("rotary"),
      py::arg("seq_len"),
      "(omega, attention factor) of a #posenc.rope_scaling attribute");
  m.def(
      "low_rank",
      [](py::array_t<double, py::array::c_style | py::array::forcecast> m,
         int64_t rank, double energy) {
        if (m.ndim() != 2)
          throw PosencError("low_rank takes a 2-D matrix, got " +
                            std::to_string(m.ndim()) + " dims");
        int64_t rows = m.shape(0), cols = m.shape(1);
        std::string error;
        std::optional<mlir::posenc::LowRankFactors> f;
        {
          py::gil_scoped_release release;
          f = mlir::posenc::lowRankFactor(
              llvm::ArrayRef<double>(m.data(), rows * cols), rows, cols, rank,
              energy, error);
        }
        if (!f)
          throw PosencError("low_rank: " + error);
        auto array = [](const std::vector<double> &v,
                        std::vector<py::ssize_t> shape) {
          return py::array(py::dtype::of<double>(), shape, v.data());
        };
        return py::make_tuple(
            array(f->down, {rows, f->rank}), array(f->up, {f->rank, cols}),
            array(f->singularValues, {py::ssize_t(f->singularValues.size())}));
      },
      py::arg("matrix"), py::arg("rank"), py::arg("energy"),
      "(down [rows, R], up [R, cols], all singular values) with down·up the "
      "best rank-R approximation; R = rank, or by retained energy when rank "
      "is 0");
  m.attr("version") = POSENC_VERSION;
  m.attr("llvm_version") = POSENC_LLVM_VERSION;
  m.def(
      "with_threads",
      [](const std::string &pipeline, int64_t threads) {
        return unwrap(withThreads(pipeline, threads));
      },
      py::arg("pipeline"), py::arg("threads"),
      "`pipeline` with num-threads=threads on each posenc-lower-to-cpu");
  m.def("retain_freed_large_buffers", &retainFreedLargeBuffers,
        "Keep freed large blocks in malloc's heap (process-wide) so each "
        "call's result reuses pages instead of faulting in new ones; False "
        "where unsupported");
}
