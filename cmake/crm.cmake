# Helpers shared by every folder: one for a library, one for a test, one for a proto package.

# crm_library(NAME SRCS a.cc b.cc DEPS x y [PRIVATE_DEPS z])
# A static library whose headers are included from the repository root.
function(crm_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SRCS})
  target_include_directories(${name} PUBLIC ${CMAKE_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  target_compile_options(${name} PRIVATE -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)
endfunction()

# crm_test(NAME SRCS a_test.cc DEPS lib [LABELS slow])
# A GoogleTest binary registered with CTest test by test.
function(crm_test name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  # Tests check behaviour, not speed, and the code they test comes from the libraries at the
  # build type's -O2: the test files themselves compile at -O0, which keeps make test in budget
  # (customer_engine_test.cc: 25.0 s at -O2, 20.6 s at -O1 under load; 13.1 s at -O1 and
  # 10.7 s at -O0 on a quiet machine).
  target_compile_options(${name} PRIVATE -O0 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)
  # Every test runs with the kernel's cached states checked against their rows (libs/kernel
  # StoreOptions::check_cached_states).
  set(props ENVIRONMENT CRM_CHECK_STATE_CACHE=1)
  if(ARG_LABELS)
    list(APPEND props LABELS "${ARG_LABELS}")
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES ${props})
endfunction()

# crm_proto_library(NAME ROOT dir PROTOS crm/x/v1/a.proto ... [DEPS other_proto_lib] [GRPC])
# Generates the C++ (and gRPC, with GRPC) code of one proto package once, as a library.
# PROTOS are paths relative to ROOT, which is also their import path, so generated files land
# at gen/<same path> and are included as "crm/x/v1/a.pb.h".
function(crm_proto_library name)
  cmake_parse_arguments(ARG "GRPC" "ROOT" "PROTOS;DEPS" ${ARGN})
  set(out ${CMAKE_BINARY_DIR}/gen)
  set(imports -I ${ARG_ROOT} -I ${CMAKE_SOURCE_DIR}/proto -I ${CRM_GOOGLE_PROTOS} -I /usr/include)
  set(srcs)
  foreach(proto ${ARG_PROTOS})
    string(REGEX REPLACE "\\.proto$" "" base ${proto})
    set(outs ${out}/${base}.pb.h ${out}/${base}.pb.cc)
    set(args --cpp_out=${out})
    if(ARG_GRPC)
      list(APPEND outs ${out}/${base}.grpc.pb.h ${out}/${base}.grpc.pb.cc)
      list(APPEND args --grpc_out=${out} --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>)
    endif()
    add_custom_command(
      OUTPUT ${outs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
      COMMAND protobuf::protoc ${args} ${imports} ${ARG_ROOT}/${proto}
      DEPENDS ${ARG_ROOT}/${proto} protobuf::protoc
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND srcs ${outs})
  endforeach()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${out})
  target_link_libraries(${name} PUBLIC protobuf::libprotobuf ${ARG_DEPS})
  if(ARG_GRPC)
    target_link_libraries(${name} PUBLIC gRPC::grpc++)
  endif()
endfunction()

# crm_binary(NAME): what every shipped program gets. jemalloc instead of glibc's malloc: the
# create path allocates per call (gRPC, protobuf, RocksDB batches) on many threads, and
# durable creates at 64 clients measured 7.0-7.7k/s with jemalloc against 5.8-6.4k/s with
# glibc's (three runs each, alternating; crm-bench, 2026-11-29, this 2-core machine).
function(crm_binary name)
  target_link_libraries(${name} PRIVATE ${CRM_JEMALLOC})
endfunction()
