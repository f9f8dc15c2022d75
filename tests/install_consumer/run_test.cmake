# The install_consumer test (cmake -P): installs the neuronlens build into a
# fresh prefix, configures and builds tests/install_consumer against it with
# find_package(neuronlens), runs it on a fixture model and checks its output.
# Variables (-D): BUILD_DIR, CONFIG, PREFIX, CONSUMER_SOURCE_DIR,
# CONSUMER_BUILD_DIR, GENERATOR, MAKE_PROGRAM, CXX_COMPILER, MODEL,
# EXPECT_LAYERS, EXPECT_VERSION.
cmake_minimum_required(VERSION 3.20)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_consumer: ${what} failed (${rc}):\n${ARGN}\n${out}\n${err}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

# Start from nothing, so that a stale install or consumer build cannot pass.
file(REMOVE_RECURSE "${PREFIX}" "${CONSUMER_BUILD_DIR}")

run("cmake --install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --config "${CONFIG}" --prefix "${PREFIX}")
foreach(installed IN ITEMS include/neuronlens/version.h include/neuronlens/model.h)
  if(NOT EXISTS "${PREFIX}/${installed}")
    message(FATAL_ERROR "install_consumer: ${PREFIX}/${installed} was not installed")
  endif()
endforeach()

set(configure_args -S "${CONSUMER_SOURCE_DIR}" -B "${CONSUMER_BUILD_DIR}" -G "${GENERATOR}"
  "-DCMAKE_PREFIX_PATH=${PREFIX}" "-DCMAKE_BUILD_TYPE=${CONFIG}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
if(MAKE_PROGRAM)
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
run("configuring the consumer" ${CMAKE_COMMAND} ${configure_args})
run("building the consumer" ${CMAKE_COMMAND} --build "${CONSUMER_BUILD_DIR}" --config "${CONFIG}")

set(consumer "${CONSUMER_BUILD_DIR}/neuronlens_consumer")
if(NOT EXISTS "${consumer}")
  set(consumer "${CONSUMER_BUILD_DIR}/${CONFIG}/neuronlens_consumer")  # multi-config generators
endif()
run("running the consumer" "${consumer}" "${MODEL}")
message(STATUS "consumer output:\n${run_output}")
foreach(expected IN ITEMS "neuronlens ${EXPECT_VERSION}\n" "n_layers ${EXPECT_LAYERS}\n")
  string(FIND "${run_output}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "install_consumer: expected \"${expected}\" in the output:\n${run_output}")
  endif()
endforeach()
