# Installs libfusor (shared and static), fusor.h, the fusor command line, a pkg-config
# file and a CMake package, so that a program links with `find_package(fusor)` or
# `pkg-config --libs fusor`.
include(CMakePackageConfigHelpers)

install(TARGETS fusor fusor_static EXPORT fusorTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS fusor_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES include/fusor.h include/fusor.hpp include/fusor.f90
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(EXPORT fusorTargets NAMESPACE fusor:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fusor)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/fusorConfig.cmake.in
  ${CMAKE_BINARY_DIR}/fusorConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fusor)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/fusorConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/fusorConfig.cmake ${CMAKE_BINARY_DIR}/fusorConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fusor)

# pkg-config: the shared library needs nothing else; a static link needs LLVM, hwloc,
# OpenMP and the C++ runtime too.
string(JOIN " " FUSOR_PC_LLVM_LIBS ${LLVM_LIBS})
set(FUSOR_PC_LIBS_PRIVATE "-L${LLVM_LIB_DIR} ${FUSOR_PC_LLVM_LIBS} -lhwloc -fopenmp -lstdc++ -lpthread -lm -ldl")
file(RELATIVE_PATH FUSOR_PC_UP /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
configure_file(${CMAKE_CURRENT_LIST_DIR}/fusor.pc.in ${CMAKE_BINARY_DIR}/fusor.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/fusor.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
