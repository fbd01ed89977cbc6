! fortran_axpy.f90 — a fusor kernel from Fortran, on Fortran's own column-major arrays.
!
! Computes z = a*x + y and the total of z over a 2-D grid with a kernel compiled at run
! time, and checks both against the same computation written in Fortran.
program fortran_axpy
    use, intrinsic :: iso_c_binding
    use fusor
    implicit none
    integer, parameter :: n = 300, m = 200
    real(c_double), target :: x(n, m), y(n, m), z(n, m)
    type(c_ptr) :: ctx, k, args, ax, ay, az
    integer(c_int64_t) :: extents(2)
    real(c_double) :: total, want
    integer :: i, j, bad
    character(len=*), parameter :: src = &
        "kernel axpy(a: f64, x: f64[], y: f64[]) -> (z: f64[], total: f64) {" // new_line('a') // &
        "    z = a * x + y" // new_line('a') // &
        "    total = sum(z)" // new_line('a') // "}"

    do j = 1, m
        do i = 1, n
            x(i, j) = real(i, c_double) / n
            y(i, j) = real(j, c_double) / m
        end do
    end do
    extents = [int(n, c_int64_t), int(m, c_int64_t)]

    call check(fusor_context_create(c_null_ptr, ctx))
    call check(fusor_kernel_compile(ctx, fusor_cstr(src), fusor_cstr("axpy.f90"), c_null_ptr, k))
    call check(fusor_array_wrap_fortran(ctx, c_loc(x), FUSOR_F64, 8, 2, extents, ax))
    call check(fusor_array_wrap_fortran(ctx, c_loc(y), FUSOR_F64, 8, 2, extents, ay))
    call check(fusor_array_wrap_fortran(ctx, c_loc(z), FUSOR_F64, 8, 2, extents, az))
    call check(fusor_args_create(k, args))
    call check(fusor_args_set_f64(args, fusor_cstr("a"), 3.0_c_double))
    call check(fusor_args_set_array(args, fusor_cstr("x"), ax))
    call check(fusor_args_set_array(args, fusor_cstr("y"), ay))
    call check(fusor_args_set_array(args, fusor_cstr("z"), az))
    call check(fusor_launch(k, args))
    call check(fusor_args_get_f64(args, fusor_cstr("total"), total))

    bad = count(z /= 3.0_c_double * x + y)
    want = sum(3.0_c_double * x + y)
    print '(a, i0, a, es24.16, a, es24.16, a)', "fortran axpy: ", bad, " mismatches; total ", &
        total, " (Fortran: ", want, ")"

    call fusor_args_destroy(args)
    call fusor_array_destroy(ax)
    call fusor_array_destroy(ay)
    call fusor_array_destroy(az)
    call fusor_kernel_destroy(k)
    call fusor_context_destroy(ctx)
    if (bad /= 0 .or. abs(total - want) > 1e-9_c_double * abs(want)) stop 1

contains

    subroutine check(status)
        integer(c_int), intent(in) :: status
        if (status /= FUSOR_OK) then
            print '(a)', "fusor error: " // fusor_last_error()
            stop 1
        end if
    end subroutine
end program fortran_axpy
