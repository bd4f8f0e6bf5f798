# ctest driver: installs the built Heron into a scratch prefix, then configures, builds and runs
# tests/cmake_consumer against it with find_package(Heron). Variables: BUILD_DIR, SOURCE_DIR, WORK.
file(REMOVE_RECURSE "${WORK}")
execute_process(COMMAND ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK}/prefix" --component heron_sdk
                RESULT_VARIABLE r OUTPUT_QUIET)
if(NOT r EQUAL 0)
  message(FATAL_ERROR "cmake --install failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/cmake_consumer" -B "${WORK}/build" "-DCMAKE_PREFIX_PATH=${WORK}/prefix"
                RESULT_VARIABLE r)
if(NOT r EQUAL 0)
  message(FATAL_ERROR "configuring the outside project failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build "${WORK}/build" RESULT_VARIABLE r)
if(NOT r EQUAL 0)
  message(FATAL_ERROR "building the outside project failed")
endif()
execute_process(COMMAND "${WORK}/build/consumer" RESULT_VARIABLE r)
if(NOT r EQUAL 0)
  message(FATAL_ERROR "the outside project's program failed")
endif()
