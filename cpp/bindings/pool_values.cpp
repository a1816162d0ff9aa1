// Python values <-> PostgreSQL values for the pool binding: statement parameters to their text
// (or binary) forms with type OIDs, and result rows from libpq's text forms to Python objects
// (int, float, Decimal, str, bytes, bool, UUID, JSON, dates and times with time zones).
#include "pool_values.hpp"

// datetime.h needs Python.h first (pybind11 includes it).
#include <datetime.h>

#include <charconv>
#include <cstdlib>
#include <unordered_map>

namespace blocktrust::bindings {

namespace {

namespace pg = blocktrust::pool;

// A Python object the conversions need, imported on first use rather than at module import
// (uuid and decimal would add ~15 ms to every program's start-up), and deliberately never freed
// (it must outlive every static destructor that could still run after the interpreter is gone).
// Only called with the GIL held, which serialises the first use.
struct LazyAttr {
  const char* module;
  const char* attr;
  py::object* value = nullptr;

  const py::object& get() {
    if (value == nullptr) value = new py::object(py::module_::import(module).attr(attr));
    return *value;
  }
  // A value cannot be an instance of a class whose module was never imported: asking
  // sys.modules first keeps every other parameter from importing the module.
  bool instance(py::handle v) {
    if (value == nullptr && PyDict_GetItemString(PyImport_GetModuleDict(), module) == nullptr)
      return false;
    return py::isinstance(v, get());
  }
};
LazyAttr g_decimal{"decimal", "Decimal"};
LazyAttr g_uuid{"uuid", "UUID"};
LazyAttr g_json_loads{"json", "loads"};
LazyAttr g_json_dumps{"json", "dumps"};

py::object utc() {
  return py::reinterpret_borrow<py::object>(PyDateTime_TimeZone_UTC);
}

// PostgreSQL type OIDs (pg_type.dat).
enum Oid : std::uint32_t {
  kBool = 16,
  kBytea = 17,
  kChar = 18,
  kName = 19,
  kInt8 = 20,
  kInt2 = 21,
  kInt4 = 23,
  kText = 25,
  kOid = 26,
  kJson = 114,
  kFloat4 = 700,
  kFloat8 = 701,
  kUnknown = 705,
  kBpchar = 1042,
  kVarchar = 1043,
  kDate = 1082,
  kTime = 1083,
  kTimestamp = 1114,
  kTimestamptz = 1184,
  kInterval = 1186,
  kTimetz = 1266,
  kNumeric = 1700,
  kUuid = 2950,
  kJsonb = 3802,
  kVoid = 2278,
};

py::object tz_for(int seconds) {
  if (seconds == 0) return utc();
  static auto* cache = new std::unordered_map<int, py::object>();
  auto it = cache->find(seconds);
  if (it != cache->end()) return it->second;
  auto delta = py::reinterpret_steal<py::object>(PyDelta_FromDSU(0, seconds, 0));
  auto tz = py::reinterpret_steal<py::object>(PyTimeZone_FromOffset(delta.ptr()));
  if (!tz) throw py::error_already_set();
  cache->emplace(seconds, tz);
  return tz;
}

[[noreturn]] void bad_value(const char* what, std::string_view v, const char* col) {
  throw py::value_error(std::string("column '") + col + "': cannot convert " + what + " '" +
                        std::string(v.substr(0, 40)) + "' to a Python value");
}

py::object steal(PyObject* o) {
  if (o == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(o);
}

py::object to_python(std::string_view v, std::uint32_t oid, const char* col) {
  switch (oid) {
    case kBool:
      return py::bool_(!v.empty() && v[0] == 't');
    case kVoid:  // SELECT pg_sleep(1), SELECT pg_notify(...)
      return py::none();
    case kInt2:
    case kInt4:
    case kInt8:
    case kOid: {
      long long n = 0;
      auto r = std::from_chars(v.data(), v.data() + v.size(), n);
      if (r.ec != std::errc()) bad_value("integer", v, col);
      return steal(PyLong_FromLongLong(n));
    }
    case kFloat4:
    case kFloat8:
      return steal(PyFloat_FromDouble(std::strtod(std::string(v).c_str(), nullptr)));
    case kNumeric:
      return g_decimal.get()(py::str(v.data(), v.size()));
    case kText:
    case kVarchar:
    case kBpchar:
    case kName:
    case kChar:
    case kUnknown:
      return steal(PyUnicode_DecodeUTF8(v.data(), static_cast<Py_ssize_t>(v.size()), "strict"));
    case kBytea: {
      auto raw = pg::text::decode_bytea(v);
      return py::bytes(raw);
    }
    case kUuid:
      return g_uuid.get()(py::str(v.data(), v.size()));
    case kJson:
    case kJsonb:
      return g_json_loads.get()(py::str(v.data(), v.size()));
    case kDate: {
      pg::text::DateTime d;
      if (!pg::text::parse_date(v, d)) bad_value("date", v, col);
      return steal(PyDate_FromDate(d.year, d.month, d.day));
    }
    case kTime:
    case kTimetz: {
      pg::text::DateTime d;
      if (!pg::text::parse_time(v, d)) bad_value("time", v, col);
      py::object tz = d.has_tz ? tz_for(d.tz_seconds) : py::none();
      return steal(PyDateTimeAPI->Time_FromTime(d.hour, d.minute, d.second, d.micro, tz.ptr(),
                                                PyDateTimeAPI->TimeType));
    }
    case kTimestamp:
    case kTimestamptz: {
      pg::text::DateTime d;
      if (!pg::text::parse_timestamp(v, d)) bad_value("timestamp", v, col);
      py::object tz = d.has_tz ? tz_for(d.tz_seconds) : py::none();
      return steal(PyDateTimeAPI->DateTime_FromDateAndTime(d.year, d.month, d.day, d.hour, d.minute,
                                                           d.second, d.micro, tz.ptr(),
                                                           PyDateTimeAPI->DateTimeType));
    }
    default:
      throw py::type_error(std::string("column '") + col + "' has PostgreSQL type oid " +
                           std::to_string(oid) +
                           ", which blocktrust_native.pool does not convert; cast it in SQL "
                           "(for example ::text)");
  }
}

}  // namespace

py::list to_rows(const pg::Result& r, bool as_dict) {
  const int nrows = r.rows(), ncols = r.columns();
  py::list out(nrows);
  std::vector<std::uint32_t> oids(ncols);
  std::vector<py::str> names;
  for (int c = 0; c < ncols; ++c) {
    oids[c] = r.column_type(c);
    if (as_dict) names.emplace_back(r.column_name(c));
  }
  for (int i = 0; i < nrows; ++i) {
    auto cell = [&](int c) -> py::object {
      return r.is_null(i, c) ? py::none() : to_python(r.value(i, c), oids[c], r.column_name(c));
    };
    if (as_dict) {
      py::dict row;
      for (int c = 0; c < ncols; ++c) row[names[c]] = cell(c);
      out[i] = std::move(row);
    } else {
      py::tuple row(ncols);
      for (int c = 0; c < ncols; ++c) row[c] = cell(c);
      out[i] = std::move(row);
    }
  }
  return out;
}

namespace {

std::string str_of(const py::handle& o) {
  return py::str(o).cast<std::string>();
}

pg::Param to_param(const py::handle& v, std::size_t index) {
  pg::Param p;
  PyObject* o = v.ptr();
  if (o == Py_None) {
    p.is_null = true;
  } else if (PyBool_Check(o)) {
    p.value = o == Py_True ? "t" : "f";
    p.oid = kBool;
  } else if (PyLong_Check(o)) {
    int overflow = 0;
    const long long n = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow != 0) {
      p.value = str_of(v);
      p.oid = kNumeric;
    } else {
      // int4 when it fits (functions such as repeat() or generate_series() take int4), else int8.
      p.value = std::to_string(n);
      p.oid = (n >= INT32_MIN && n <= INT32_MAX) ? kInt4 : kInt8;
    }
  } else if (PyFloat_Check(o)) {
    char* s = PyOS_double_to_string(PyFloat_AS_DOUBLE(o), 'r', 0, Py_DTSF_ADD_DOT_0, nullptr);
    if (s == nullptr) throw py::error_already_set();
    p.value = s;
    PyMem_Free(s);
    p.oid = kFloat8;
  } else if (PyUnicode_Check(o)) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(o, &n);
    if (s == nullptr) throw py::error_already_set();
    p.value.assign(s, static_cast<std::size_t>(n));
    p.oid = 0;  // unknown: the server infers text, a date, json... from the context
  } else if (PyBytes_Check(o) || PyByteArray_Check(o) || PyMemoryView_Check(o)) {
    py::buffer_info info = py::reinterpret_borrow<py::buffer>(v).request();
    p.value.assign(static_cast<const char*>(info.ptr),
                   static_cast<std::size_t>(info.size * info.itemsize));
    p.oid = kBytea;
    p.binary = true;
  } else if (PyDateTime_Check(o)) {
    p.value = str_of(v.attr("isoformat")());
    p.oid = v.attr("utcoffset")().is_none() ? kTimestamp : kTimestamptz;
  } else if (PyDate_Check(o)) {
    p.value = str_of(v.attr("isoformat")());
    p.oid = kDate;
  } else if (PyTime_Check(o)) {
    p.value = str_of(v.attr("isoformat")());
    p.oid = v.attr("tzinfo").is_none() ? kTime : kTimetz;
  } else if (PyDelta_Check(o)) {
    p.value = std::to_string(PyDateTime_DELTA_GET_DAYS(o)) + " days " +
              std::to_string(PyDateTime_DELTA_GET_SECONDS(o)) + " seconds " +
              std::to_string(PyDateTime_DELTA_GET_MICROSECONDS(o)) + " microseconds";
    p.oid = kInterval;
  } else if (g_decimal.instance(v)) {
    p.value = str_of(v);
    p.oid = kNumeric;
  } else if (g_uuid.instance(v)) {
    p.value = str_of(v);
    p.oid = kUuid;
  } else if (PyDict_Check(o) || PyList_Check(o)) {
    p.value = g_json_dumps.get()(v).cast<std::string>();
    p.oid = kJsonb;
  } else {
    auto t = py::type::of(v);
    throw py::type_error("parameter $" + std::to_string(index + 1) + ": cannot send " +
                         str_of(t.attr("__module__")) + "." + str_of(t.attr("__qualname__")) +
                         " to PostgreSQL (supported: None, bool, int, float, Decimal, str, bytes, "
                         "datetime, date, time, timedelta, UUID, dict, list)");
  }
  return p;
}

}  // namespace

std::vector<pg::Param> to_params(const py::object& params) {
  std::vector<pg::Param> out;
  if (params.is_none()) return out;
  if (PyUnicode_Check(params.ptr()) || PyBytes_Check(params.ptr()) || PyDict_Check(params.ptr())) {
    throw py::type_error("params must be a sequence (tuple or list) of values for $1..$n");
  }
  auto seq = py::reinterpret_borrow<py::sequence>(params);
  out.reserve(seq.size());
  std::size_t i = 0;
  for (auto item : seq) out.push_back(to_param(item, i++));
  return out;
}

void init_pool_values() {
  PyDateTime_IMPORT;
  if (PyDateTimeAPI == nullptr) throw py::error_already_set();
}

}  // namespace blocktrust::bindings
