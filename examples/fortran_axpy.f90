! fortran_axpy.f90 — a fusor kernel from Fortran, on Fortran's own column-major arrays.
!
! Computes z = a*x + y and the total of z over a 2-D grid with a kernel compiled at run
! time, and checks both against the same computation written in Fortran.  Then a time
! loop as a simulation code writes it: a 1-D diffusion kernel prepared once, launched on a
! stream each step with the two buffers swapped between steps, against the Fortran loop.
program fortran_axpy
    use, intrinsic :: iso_c_binding
    use fusor
    implicit none
    integer, parameter :: n = 300, m = 200
    real(c_double), target :: x(n, m), y(n, m), z(n, m)
    type(c_ptr) :: ctx, k, args, ax, ay, az
    integer(c_int64_t) :: extents(2)
    real(c_double) :: total, want
    integer :: i, j, bad, step
    integer, parameter :: nx = 5000, steps = 40
    real(c_double), target :: u(nx), v(nx)
    real(c_double) :: ref(nx), tmp(nx)
    type(c_ptr) :: kd, dargs, au, av, prep, stream
    integer(c_int64_t) :: ext1(1)
    character(len=*), parameter :: diffusion = &
        "kernel diffuse(u: f64[n] clamp, r: f64) -> (out: f64[]) {" // new_line('a') // &
        "    out = u + r * (u[-1] - 2.0 * u + u[1])" // new_line('a') // "}"
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

    ! The time loop: bound once, then launch and swap; the stream overlaps with this code.
    do i = 1, nx
        u(i) = real(mod(i * 7919, 1000), c_double) / 10
    end do
    ref = u
    do step = 1, steps
        tmp(2:nx-1) = ref(2:nx-1) + 0.25_c_double * (ref(1:nx-2) - 2 * ref(2:nx-1) + ref(3:nx))
        tmp(1) = ref(1) + 0.25_c_double * (ref(2) - ref(1))
        tmp(nx) = ref(nx) + 0.25_c_double * (ref(nx-1) - ref(nx))
        ref = tmp
    end do
    ext1 = [int(nx, c_int64_t)]
    call check(fusor_kernel_compile(ctx, fusor_cstr(diffusion), fusor_cstr("diffuse.f90"), &
                                    c_null_ptr, kd))
    call check(fusor_array_wrap_fortran(ctx, c_loc(u), FUSOR_F64, 8, 1, ext1, au))
    call check(fusor_array_wrap_fortran(ctx, c_loc(v), FUSOR_F64, 8, 1, ext1, av))
    call check(fusor_args_create(kd, dargs))
    call check(fusor_args_set_array(dargs, fusor_cstr("u"), au))
    call check(fusor_args_set_array(dargs, fusor_cstr("out"), av))
    call check(fusor_args_set_f64(dargs, fusor_cstr("r"), 0.25_c_double))
    call check(fusor_prepare(kd, dargs, prep))
    call check(fusor_stream_create(ctx, stream))
    do step = 1, steps
        call check(fusor_prepared_launch_async(prep, stream))
        call check(fusor_prepared_swap(prep, fusor_cstr("u"), fusor_cstr("out")))
    end do
    call check(fusor_stream_synchronize(stream))
    ! An even number of steps leaves the newest field in u.
    print '(a, i0, a, i0, a)', "fortran diffusion: ", count(u /= ref), " of ", nx, &
        " points differ from the Fortran loop"
    if (any(u /= ref)) stop 1
    call fusor_stream_destroy(stream)
    call fusor_prepared_destroy(prep)
    call fusor_args_destroy(dargs)
    call fusor_array_destroy(au)
    call fusor_array_destroy(av)
    call fusor_kernel_destroy(kd)

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
